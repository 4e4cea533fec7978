// auth: users and the server side of SCRAM. The message formats and the MongoDB-specific
// parts (SCRAM-SHA-1 hashes hex(MD5("user:mongo:password")) instead of the password;
// speculativeAuthenticate and saslSupportedMechs in hello; skipEmptyExchange) follow the
// specification's source/auth/auth.md; the cryptography is OpenSSL's.
#include "auth.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <array>
#include <optional>
#include <stdexcept>

#include "bson_util.hpp"

namespace standin {
namespace {

constexpr int32_t code_bad_value = 2;
constexpr int32_t code_unauthorized = 13;
constexpr int32_t code_authentication_failed = 18;
constexpr int32_t code_mechanism_unavailable = 334;

const EVP_MD* digest_of(scram_mechanism m) {
    return m == scram_mechanism::sha1 ? EVP_sha1() : EVP_sha256();
}

std::string_view name_of(scram_mechanism m) {
    return m == scram_mechanism::sha1 ? "SCRAM-SHA-1" : "SCRAM-SHA-256";
}

std::optional<scram_mechanism> mechanism_named(std::string_view name) {
    if (name == "SCRAM-SHA-1") return scram_mechanism::sha1;
    if (name == "SCRAM-SHA-256") return scram_mechanism::sha256;
    return std::nullopt;
}

std::string hash(const EVP_MD* md, std::string_view data) {
    std::array<unsigned char, EVP_MAX_MD_SIZE> out;
    unsigned len = 0;
    if (!EVP_Digest(data.data(), data.size(), out.data(), &len, md, nullptr))
        throw std::runtime_error("OpenSSL digest failed");
    return {reinterpret_cast<const char*>(out.data()), len};
}

std::string hmac(const EVP_MD* md, std::string_view key, std::string_view data) {
    std::array<unsigned char, EVP_MAX_MD_SIZE> out;
    unsigned len = 0;
    if (!HMAC(md, key.data(), static_cast<int>(key.size()),
              reinterpret_cast<const unsigned char*>(data.data()), data.size(), out.data(), &len))
        throw std::runtime_error("OpenSSL HMAC failed");
    return {reinterpret_cast<const char*>(out.data()), len};
}

std::string random_bytes(std::size_t n) {
    std::string out(n, '\0');
    if (RAND_bytes(reinterpret_cast<unsigned char*>(out.data()), static_cast<int>(n)) != 1)
        throw std::runtime_error("OpenSSL RAND_bytes failed");
    return out;
}

std::string base64(std::string_view raw) {
    std::string out(4 * ((raw.size() + 2) / 3) + 1, '\0');
    int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                            reinterpret_cast<const unsigned char*>(raw.data()),
                            static_cast<int>(raw.size()));
    out.resize(static_cast<std::size_t>(n));
    return out;
}

// Strict: only the base64 alphabet, a length that is a multiple of 4, padding at the end.
std::optional<std::string> unbase64(std::string_view text) {
    if (text.size() % 4 != 0) return std::nullopt;
    std::size_t pad = 0;
    while (pad < 2 && pad < text.size() && text[text.size() - 1 - pad] == '=') ++pad;
    for (std::size_t i = 0; i + pad < text.size(); ++i) {
        char c = text[i];
        bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                  c == '+' || c == '/';
        if (!ok) return std::nullopt;
    }
    std::string out(text.size() / 4 * 3, '\0');
    int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                            reinterpret_cast<const unsigned char*>(text.data()),
                            static_cast<int>(text.size()));
    if (n < 0) return std::nullopt;
    out.resize(static_cast<std::size_t>(n) - pad);  // DecodeBlock counts the padding as zeros
    return out;
}

std::string hex(std::string_view raw) {
    static constexpr char digits[] = "0123456789abcdef";
    std::string out;
    for (unsigned char c : raw) {
        out += digits[c >> 4];
        out += digits[c & 15];
    }
    return out;
}

scram_credential derive(scram_mechanism m, const std::string& name, std::string_view password) {
    // MongoDB's SCRAM-SHA-1 stores the legacy MONGODB-CR digest as the "password".
    const std::string input = m == scram_mechanism::sha1
                                  ? hex(hash(EVP_md5(), name + ":mongo:" + std::string(password)))
                                  : std::string(password);
    scram_credential c{
        m, random_bytes(m == scram_mechanism::sha1 ? 16 : 28), user_table::iterations, {}, {}};
    const EVP_MD* md = digest_of(m);
    std::array<unsigned char, EVP_MAX_MD_SIZE> salted;
    const int size = EVP_MD_get_size(md);
    if (!PKCS5_PBKDF2_HMAC(input.data(), static_cast<int>(input.size()),
                           reinterpret_cast<const unsigned char*>(c.salt.data()),
                           static_cast<int>(c.salt.size()), c.iterations, md, size, salted.data()))
        throw std::runtime_error("OpenSSL PBKDF2 failed");
    std::string_view salted_password(reinterpret_cast<const char*>(salted.data()),
                                     static_cast<std::size_t>(size));
    c.stored_key = hash(md, hmac(md, salted_password, "Client Key"));
    c.server_key = hmac(md, salted_password, "Server Key");
    OPENSSL_cleanse(salted.data(), salted.size());
    return c;
}

// SASLprep (RFC 4013) leaves printable ASCII unchanged and refuses control characters; the
// stand-in does not carry the Unicode tables for the rest, so it refuses any other byte
// rather than store a credential that a driver's SASLprep would compute differently.
bool saslprep_identity(std::string_view password) {
    for (unsigned char c : password)
        if (c < 0x20 || c > 0x7e) return false;
    return true;
}

void fail(bson_t* reply, int32_t code, std::string_view message, std::string_view code_name) {
    bson_reinit(reply);
    BSON_APPEND_DOUBLE(reply, "ok", 0.0);
    append_utf8(reply, "errmsg", message);
    BSON_APPEND_INT32(reply, "code", code);
    append_utf8(reply, "codeName", code_name);
}

// Ends the conversation and fails the reply: every failure starts authentication over.
void fail_auth(auth_state& state, bson_t* reply, std::string_view message) {
    state.step = 0;
    state.credential = nullptr;
    fail(reply, code_authentication_failed, message, "AuthenticationFailed");
}

// The payload field (BinData, as drivers send it; a string is accepted too).
std::optional<std::string_view> payload_of(const bson_t* body) {
    bson_iter_t it;
    if (!bson_iter_init_find(&it, body, "payload")) return std::nullopt;
    if (BSON_ITER_HOLDS_BINARY(&it)) {
        bson_subtype_t subtype;
        uint32_t len = 0;
        const uint8_t* data = nullptr;
        bson_iter_binary(&it, &subtype, &len, &data);
        return std::string_view(reinterpret_cast<const char*>(data), len);
    }
    if (BSON_ITER_HOLDS_UTF8(&it)) return utf8_of(it);
    return std::nullopt;
}

void append_payload(bson_t* reply, std::string_view payload) {
    bson_append_binary(reply, "payload", 7, BSON_SUBTYPE_BINARY,
                       reinterpret_cast<const uint8_t*>(payload.data()),
                       static_cast<uint32_t>(payload.size()));
}

// "=2C" -> ',' and "=3D" -> '=' (RFC 5802 saslname); nullopt for any other '='.
std::optional<std::string> decode_saslname(std::string_view s) {
    std::string out;
    for (std::size_t i = 0; i < s.size(); ++i) {
        if (s[i] == ',') return std::nullopt;
        if (s[i] != '=') {
            out += s[i];
            continue;
        }
        auto code = s.substr(i + 1, 2);
        if (code == "2C")
            out += ',';
        else if (code == "3D")
            out += '=';
        else
            return std::nullopt;
        i += 2;
    }
    return out;
}

// Splits "a=x,b=y,..." into its attributes, in order.
std::vector<std::pair<char, std::string_view>> attributes(std::string_view s) {
    std::vector<std::pair<char, std::string_view>> out;
    while (!s.empty()) {
        auto comma = s.find(',');
        auto part = s.substr(0, comma);
        if (part.size() < 2 || part[1] != '=') return {};
        out.emplace_back(part[0], part.substr(2));
        if (comma == std::string_view::npos) break;
        s.remove_prefix(comma + 1);
        if (s.empty()) return {};  // a trailing comma
    }
    return out;
}

int32_t next_conversation_id(auth_state& state) {
    return ++state.conversation_id;
}

}  // namespace

const scram_credential* user::find(scram_mechanism m) const {
    for (const auto& c : credentials)
        if (c.mechanism == m) return &c;
    return nullptr;
}

void user_table::add(std::string name, std::string_view password, std::string_view mechanisms) {
    if (name.empty()) throw std::invalid_argument("a user name must not be empty");
    if (find(name)) throw std::invalid_argument("user '" + name + "' is given twice");
    if (password.empty()) throw std::invalid_argument("user '" + name + "' has an empty password");
    std::vector<scram_mechanism> mechs;
    if (mechanisms.empty()) mechanisms = "SCRAM-SHA-1,SCRAM-SHA-256";
    while (!mechanisms.empty()) {
        auto comma = mechanisms.find(',');
        auto word = mechanisms.substr(0, comma);
        auto m = mechanism_named(word);
        if (!m)
            throw std::invalid_argument("unknown mechanism '" + std::string(word) +
                                        "' (SCRAM-SHA-1, SCRAM-SHA-256)");
        mechs.push_back(*m);
        mechanisms = comma == std::string_view::npos ? "" : mechanisms.substr(comma + 1);
    }
    user u{std::move(name), {}};
    for (auto m : mechs) {
        if (u.find(m)) continue;
        if (m == scram_mechanism::sha256 && !saslprep_identity(password))
            throw std::invalid_argument(
                "user '" + u.name +
                "': SCRAM-SHA-256 needs a password of printable ASCII characters here (the "
                "stand-in does not implement SASLprep's Unicode mapping); use SCRAM-SHA-1 for "
                "this password");
        u.credentials.push_back(derive(m, u.name, password));
    }
    users_.push_back(std::move(u));
}

const user* user_table::find(std::string_view name) const {
    for (const auto& u : users_)
        if (u.name == name) return &u;
    return nullptr;
}

user_spec parse_user_spec(std::string_view text) {
    auto first = text.find(':');
    if (first == std::string_view::npos || first == 0)
        throw std::invalid_argument("expected NAME:SECRET[:MECHANISMS]");
    user_spec spec;
    spec.name = text.substr(0, first);
    auto rest = text.substr(first + 1);
    auto second = rest.find(':');
    spec.secret = rest.substr(0, second);
    if (second != std::string_view::npos) spec.mechanisms = rest.substr(second + 1);
    if (spec.secret.empty()) throw std::invalid_argument("expected NAME:SECRET[:MECHANISMS]");
    return spec;
}

void sasl_start(const user_table& users, auth_state& state, const bson_t* body, std::string_view db,
                bson_t* reply) {
    state.step = 0;  // a new saslStart abandons any conversation in progress
    bson_iter_t it;
    if (!bson_iter_init_find(&it, body, "mechanism") || !BSON_ITER_HOLDS_UTF8(&it))
        return fail(reply, code_bad_value, "saslStart needs a 'mechanism' string", "BadValue");
    auto mechanism = mechanism_named(utf8_of(it));
    if (!mechanism)
        return fail(reply, code_mechanism_unavailable,
                    "mechanism '" + std::string(utf8_of(it)) + "' is not supported",
                    "MechanismUnavailable");
    auto payload = payload_of(body);
    if (!payload) return fail_auth(state, reply, "saslStart needs a 'payload' (BinData)");
    if (payload->size() > max_sasl_payload)
        return fail_auth(state, reply, "SASL payload too large");

    // client-first: gs2-header "n,," (no channel binding, no authzid), then the bare part.
    const std::string_view gs2 = "n,,";
    if (payload->substr(0, gs2.size()) != gs2 && payload->substr(0, 3) != "y,,")
        return fail_auth(state, reply, "SCRAM: client-first must start with 'n,,'");
    const std::string_view bare = payload->substr(3);
    auto attrs = attributes(bare);
    if (attrs.size() < 2 || attrs[0].first != 'n' || attrs[1].first != 'r' ||
        attrs[1].second.empty())
        return fail_auth(state, reply, "SCRAM: malformed client-first message");
    for (char c : attrs[1].second)
        if (c < 0x21 || c > 0x7e || c == ',')
            return fail_auth(state, reply, "SCRAM: malformed client nonce");
    auto name = decode_saslname(attrs[0].second);
    if (!name) return fail_auth(state, reply, "SCRAM: malformed user name");

    const user* u = db == "admin" ? users.find(*name) : nullptr;
    const scram_credential* cred = u ? u->find(*mechanism) : nullptr;
    if (!cred) return fail_auth(state, reply, "Authentication failed.");

    state.nonce = std::string(attrs[1].second) + base64(random_bytes(24));
    const std::string server_first =
        "r=" + state.nonce + ",s=" + base64(cred->salt) + ",i=" + std::to_string(cred->iterations);
    state.auth_message = std::string(bare) + "," + server_first;
    state.credential = cred;
    state.pending_user = *name;
    state.step = 1;
    state.started = std::chrono::steady_clock::now();
    state.skip_empty_exchange = false;
    bson_iter_t opt;
    if (bson_iter_init_find(&it, body, "options") && BSON_ITER_HOLDS_DOCUMENT(&it) &&
        bson_iter_recurse(&it, &opt) && bson_iter_find(&opt, "skipEmptyExchange"))
        state.skip_empty_exchange = bson_iter_as_bool(&opt);

    BSON_APPEND_INT32(reply, "conversationId", next_conversation_id(state));
    BSON_APPEND_BOOL(reply, "done", false);
    append_payload(reply, server_first);
    BSON_APPEND_DOUBLE(reply, "ok", 1.0);
}

void sasl_continue(const user_table& users, auth_state& state, const bson_t* body, bson_t* reply) {
    (void)users;
    bson_iter_t it;
    if (!state.in_conversation())
        return fail_auth(state, reply, "saslContinue without a conversation in progress");
    if (!bson_iter_init_find(&it, body, "conversationId") || !BSON_ITER_HOLDS_INT32(&it) ||
        bson_iter_int32(&it) != state.conversation_id)
        return fail_auth(state, reply, "saslContinue: unknown conversationId");
    auto payload = payload_of(body);
    if (!payload) return fail_auth(state, reply, "saslContinue needs a 'payload' (BinData)");
    if (payload->size() > max_sasl_payload)
        return fail_auth(state, reply, "SASL payload too large");

    if (state.step == 2) {  // the closing empty exchange
        if (!payload->empty()) return fail_auth(state, reply, "SCRAM: expected an empty message");
        state.step = 0;
        state.authenticated = true;
        state.user = state.pending_user;
        BSON_APPEND_INT32(reply, "conversationId", state.conversation_id);
        BSON_APPEND_BOOL(reply, "done", true);
        append_payload(reply, "");
        BSON_APPEND_DOUBLE(reply, "ok", 1.0);
        return;
    }

    // client-final: "c=biws,r=NONCE,p=PROOF"; the proof signs everything before ",p=".
    auto attrs = attributes(*payload);
    if (attrs.size() < 3 || attrs[0].first != 'c' || attrs[1].first != 'r' ||
        attrs.back().first != 'p')
        return fail_auth(state, reply, "SCRAM: malformed client-final message");
    if (attrs[0].second != "biws" && attrs[0].second != "eSws")
        return fail_auth(state, reply, "SCRAM: channel binding is not supported");
    if (attrs[1].second != state.nonce) return fail_auth(state, reply, "SCRAM: nonce mismatch");
    auto proof = unbase64(attrs.back().second);
    const scram_credential& cred = *state.credential;
    const EVP_MD* md = digest_of(cred.mechanism);
    if (!proof || proof->size() != cred.stored_key.size())
        return fail_auth(state, reply, "SCRAM: malformed client proof");

    const auto without_proof = payload->substr(0, payload->rfind(",p="));
    const std::string auth_message = state.auth_message + "," + std::string(without_proof);
    const std::string signature = hmac(md, cred.stored_key, auth_message);
    std::string client_key(*proof);
    for (std::size_t i = 0; i < client_key.size(); ++i) client_key[i] ^= signature[i];
    const std::string stored = hash(md, client_key);
    if (CRYPTO_memcmp(stored.data(), cred.stored_key.data(), stored.size()) != 0)
        return fail_auth(state, reply, "Authentication failed.");

    const std::string server_final = "v=" + base64(hmac(md, cred.server_key, auth_message));
    const bool done = state.skip_empty_exchange;
    state.step = done ? 0 : 2;
    if (done) {
        state.authenticated = true;
        state.user = state.pending_user;
    }
    BSON_APPEND_INT32(reply, "conversationId", state.conversation_id);
    BSON_APPEND_BOOL(reply, "done", done);
    append_payload(reply, server_final);
    BSON_APPEND_DOUBLE(reply, "ok", 1.0);
}

void append_hello_auth(const user_table& users, auth_state& state, const bson_t* body,
                       bson_t* reply) {
    if (users.empty()) return;
    bson_iter_t it;
    if (bson_iter_init_find(&it, body, "saslSupportedMechs") && BSON_ITER_HOLDS_UTF8(&it)) {
        auto full = utf8_of(it);  // "admin.NAME"
        const user* u = full.substr(0, 6) == "admin." ? users.find(full.substr(6)) : nullptr;
        if (u) {
            bson_t array;
            BSON_APPEND_ARRAY_BEGIN(reply, "saslSupportedMechs", &array);
            int i = 0;
            for (const auto& c : u->credentials)
                append_utf8(&array, std::to_string(i++), name_of(c.mechanism));
            bson_append_array_end(reply, &array);
        }
    }
    bson_iter_t spec;
    if (bson_iter_init_find(&it, body, "speculativeAuthenticate") &&
        BSON_ITER_HOLDS_DOCUMENT(&it)) {
        bson_view doc(subdocument_of(it));
        std::string_view db;
        if (bson_iter_init_find(&spec, doc.get(), "db") && BSON_ITER_HOLDS_UTF8(&spec))
            db = utf8_of(spec);
        bson_t sub;
        bson_init(&sub);
        sasl_start(users, state, doc.get(), db, &sub);
        // Only a successful start goes back; otherwise the driver runs saslStart itself
        // and gets the error there.
        bson_iter_t ok;
        if (bson_iter_init_find(&ok, &sub, "ok") && bson_iter_as_double(&ok) == 1.0) {
            bson_t out;
            BSON_APPEND_DOCUMENT_BEGIN(reply, "speculativeAuthenticate", &out);
            bson_iter_t f;
            bson_iter_init(&f, &sub);
            while (bson_iter_next(&f))
                if (key_of(f) != "ok") bson_append_iter(&out, nullptr, 0, &f);
            bson_append_document_end(reply, &out);
        }
        bson_destroy(&sub);
    }
}

void fail_unauthorized(bson_t* reply, std::string_view command) {
    fail(reply, code_unauthorized, "command " + std::string(command) + " requires authentication",
         "Unauthorized");
}

}  // namespace standin
