#!/usr/bin/env bash
# Generates throw-away test certificates into DIR (openssl CLI, EC P-256 keys; nothing here is
# ever committed). Usage: tests/support/make-test-certs.sh DIR
#   ca.pem / ca.key            the test CA
#   server.pem / server.key    signed by ca, subjectAltName IP:127.0.0.1, DNS:localhost
#   client.pem / client.key    signed by ca, for --tls-require-client-cert
#   client-encrypted.key       client.key encrypted with the password in client-key-password
#   expired.pem / expired.key  signed by ca for 127.0.0.1, but notAfter is in the past
#   wronghost.pem / .key       signed by ca, valid, but only for DNS:wrong-host.invalid
#   other-ca.pem               a second CA that signed nothing the stand-in serves
#   selfsigned.pem / .key      self-signed for 127.0.0.1 (an unknown issuer)
set -euo pipefail
dir=${1:?usage: make-test-certs.sh DIR}
mkdir -p "$dir"
cd "$dir"
quiet() { "$@" >/dev/null 2>&1 || { echo "make-test-certs: failed: $*" >&2; exit 1; }; }

key() { quiet openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1"; }
ca() {  # NAME CN
  key "$1.key"
  quiet openssl req -x509 -new -key "$1.key" -out "$1.pem" -days 2 -subj "/CN=$2" \
    -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign
}
# A validity that ended in the past: OpenSSL 3.4+ (Debian 13) takes the dates and refuses a
# negative -days; older ones (Debian 12's 3.0) have no -not_after but take -days -1.
if openssl x509 -help 2>&1 | grep -q -- -not_after; then
  past=(-not_before 20200101000000Z -not_after 20200102000000Z)
else
  past=(-days -1)
fi
leaf() {  # NAME CN DAYS|past SAN [EXTENDED_KEY_USAGE]
  key "$1.key"
  quiet openssl req -new -key "$1.key" -out "$1.csr" -subj "/CN=$2"
  printf 'subjectAltName=%s\nbasicConstraints=CA:FALSE\nextendedKeyUsage=%s\n' "$4" "${5:-serverAuth}" >"$1.ext"
  local validity=(-days "$3")
  [[ $3 == past ]] && validity=("${past[@]}")
  quiet openssl x509 -req -in "$1.csr" -CA ca.pem -CAkey ca.key -CAcreateserial -out "$1.pem" \
    "${validity[@]}" -extfile "$1.ext"
  rm -f "$1.csr" "$1.ext"
}

ca ca coroserve-test-ca
ca other-ca coroserve-other-ca
leaf server localhost 2 "IP:127.0.0.1,DNS:localhost"
leaf client coroserve-test-client 2 "DNS:client.invalid" clientAuth
leaf expired localhost past "IP:127.0.0.1,DNS:localhost"
leaf wronghost wrong-host.invalid 2 "DNS:wrong-host.invalid"
key selfsigned.key
quiet openssl req -x509 -new -key selfsigned.key -out selfsigned.pem -days 2 -subj /CN=localhost \
  -addext subjectAltName=IP:127.0.0.1,DNS:localhost
# libmongoc and the Python drivers take the client certificate and its key in one file.
cat client.pem client.key >client-bundle.pem
openssl rand -hex 12 >client-key-password
quiet openssl pkcs8 -topk8 -in client.key -out client-encrypted.key -v2 aes-256-cbc \
  -passout file:client-key-password
cat client.pem client-encrypted.key >client-bundle-encrypted.pem
chmod 600 ./*.key client-key-password
