// auth: the stand-in's users and the server side of SCRAM-SHA-1 / SCRAM-SHA-256 (RFC 5802
// as the MongoDB authentication specification uses it). OpenSSL does every hash, HMAC,
// PBKDF2 and random byte; this file only frames the messages. No networking here.
#pragma once

#include <bson/bson.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace standin {

enum class scram_mechanism { sha1, sha256 };

// What the server keeps of a password: never the password itself (RFC 5802 section 3).
struct scram_credential {
    scram_mechanism mechanism;
    std::string salt;  // raw bytes, random per user and mechanism
    int iterations;
    std::string stored_key, server_key;  // raw digests
};

struct user {
    std::string name;
    std::vector<scram_credential> credentials;
    const scram_credential* find(scram_mechanism m) const;
};

// The users given on the command line. Empty: authentication is off and every command runs.
// Users live in the "admin" database (authSource=admin), as in a MongoDB deployment.
class user_table {
  public:
    static constexpr int iterations = 4096;  // the least SCRAM-SHA-256 drivers accept

    // `mechanisms`: "SCRAM-SHA-1,SCRAM-SHA-256" (any non-empty subset; empty = both).
    // Throws std::invalid_argument with a message fit for the command line (bad name,
    // unknown mechanism, a password SASLprep would refuse or change for SCRAM-SHA-256).
    void add(std::string name, std::string_view password, std::string_view mechanisms);
    const user* find(std::string_view name) const;
    bool empty() const { return users_.empty(); }

  private:
    std::vector<user> users_;
};

// Parses "NAME:PASSWORD[:MECHANISMS]" (--user); the password may not contain ':' there.
// The password comes separately for --user-env NAME:VAR and --user-file NAME:PATH.
struct user_spec {
    std::string name, secret, mechanisms;
};
user_spec parse_user_spec(std::string_view text);

// One connection's authentication: the conversation in progress and who is logged in.
struct auth_state {
    bool authenticated = false;
    std::string user;

    // The conversation in progress (step 0: none).
    int step = 0;  // 1: waiting for client-final, 2: waiting for the closing empty message
    int32_t conversation_id = 0;
    const scram_credential* credential = nullptr;
    std::string auth_message;  // client-first-bare "," server-first
    std::string nonce;         // client nonce + server nonce
    std::string pending_user;
    bool skip_empty_exchange = false;
    std::chrono::steady_clock::time_point started{};

    bool in_conversation() const { return step != 0; }
};

// The largest SASL payload accepted; a SCRAM message is a few hundred bytes.
constexpr std::size_t max_sasl_payload = 4096;

// saslStart / saslContinue: write the reply (ok or AuthenticationFailed) into `reply`.
void sasl_start(const user_table& users, auth_state& state, const bson_t* body, std::string_view db,
                bson_t* reply);
void sasl_continue(const user_table& users, auth_state& state, const bson_t* body, bson_t* reply);

// The hello extras: saslSupportedMechs for {saslSupportedMechs: "admin.NAME"}, and the
// saslStart reply under speculativeAuthenticate when the client sent one that succeeded.
void append_hello_auth(const user_table& users, auth_state& state, const bson_t* body,
                       bson_t* reply);

// Fails `reply` with code 13 Unauthorized for `command`.
void fail_unauthorized(bson_t* reply, std::string_view command);

}  // namespace standin
