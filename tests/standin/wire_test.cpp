// The stand-in at the byte level: the handshake's exact BSON types, OP_MSG sections, and
// malformed messages (each must close only its own connection; the process keeps serving).
#include <arpa/inet.h>
#include <bson/bson.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <functional>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "standin.hpp"

using test_support::standin;

namespace {

constexpr int32_t op_reply = 1, op_query = 2004, op_compressed = 2012, op_msg = 2013;

void put_i32(std::vector<uint8_t>& out, int32_t v) {
    auto u = static_cast<uint32_t>(v);
    for (int i = 0; i < 4; ++i) out.push_back(uint8_t(u >> (8 * i)));
}
int32_t get_i32(const uint8_t* p) {
    return static_cast<int32_t>(uint32_t(p[0]) | uint32_t(p[1]) << 8 | uint32_t(p[2]) << 16 |
                                uint32_t(p[3]) << 24);
}
void put_bytes(std::vector<uint8_t>& out, const void* p, std::size_t n) {
    auto* b = static_cast<const uint8_t*>(p);
    out.insert(out.end(), b, b + n);
}
void put_doc(std::vector<uint8_t>& out, const bson_t* doc) {
    put_bytes(out, bson_get_data(doc), doc->len);
}

// header + payload; the length field is the real one unless `length` overrides it.
std::vector<uint8_t> message(int32_t op, int32_t request_id, const std::vector<uint8_t>& payload,
                             std::optional<int32_t> length = {}) {
    std::vector<uint8_t> out;
    put_i32(out, length.value_or(static_cast<int32_t>(16 + payload.size())));
    put_i32(out, request_id);
    put_i32(out, 0);
    put_i32(out, op);
    out.insert(out.end(), payload.begin(), payload.end());
    return out;
}

std::vector<uint8_t> op_msg_payload(const bson_t* body, uint32_t flags = 0) {
    std::vector<uint8_t> p;
    put_i32(p, static_cast<int32_t>(flags));
    p.push_back(0);
    put_doc(p, body);
    return p;
}

std::vector<uint8_t> op_query_payload(const char* ns, const bson_t* query) {
    std::vector<uint8_t> p;
    put_i32(p, 0);
    put_bytes(p, ns, std::strlen(ns) + 1);
    put_i32(p, 0);
    put_i32(p, -1);
    put_doc(p, query);
    return p;
}

struct bson_owner {
    bson_t* doc;
    explicit bson_owner(bson_t* d) : doc(d) { REQUIRE(doc); }
    ~bson_owner() { bson_destroy(doc); }
    const bson_t* get() const { return doc; }
};
bson_owner json(const char* text) {
    return bson_owner(bson_new_from_json(reinterpret_cast<const uint8_t*>(text), -1, nullptr));
}

// A blocking TCP client with a 5 s receive timeout.
class raw_connection {
  public:
    explicit raw_connection(unsigned short port) : fd_(::socket(AF_INET, SOCK_STREAM, 0)) {
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_port = htons(port);
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        REQUIRE(::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
        timeval tv{5, 0};
        ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    }
    ~raw_connection() { ::close(fd_); }

    void send(const std::vector<uint8_t>& bytes) {
        REQUIRE(::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL) ==
                static_cast<ssize_t>(bytes.size()));
    }
    // One whole reply message, or nullopt when the server closed the connection.
    std::optional<std::vector<uint8_t>> receive() {
        std::vector<uint8_t> msg(16);
        if (!read_exactly(msg.data(), 16)) return std::nullopt;
        const int32_t len = get_i32(msg.data());
        REQUIRE(len >= 16);
        msg.resize(std::size_t(len));
        if (!read_exactly(msg.data() + 16, msg.size() - 16)) return std::nullopt;
        return msg;
    }
    void shutdown_write() { ::shutdown(fd_, SHUT_WR); }
    // Reads until the server closes; fails the test on a receive timeout.
    void drain() {
        uint8_t buf[4096];
        for (;;) {
            ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
            if (n < 0 && errno == EINTR) continue;
            if (n < 0) REQUIRE(errno == ECONNRESET);
            if (n <= 0) return;
        }
    }
    // True when the server closes the connection (EOF or reset) before the timeout.
    bool closed_by_server() {
        uint8_t b;
        ssize_t n = ::recv(fd_, &b, 1, 0);
        return n == 0 || (n < 0 && errno == ECONNRESET);
    }

  private:
    bool read_exactly(uint8_t* p, std::size_t n) {
        while (n > 0) {
            ssize_t r = ::recv(fd_, p, n, 0);
            if (r < 0 && errno == EINTR) continue;
            if (r < 0) REQUIRE(errno == ECONNRESET);  // a timeout fails the test
            if (r <= 0) return false;
            p += r;
            n -= std::size_t(r);
        }
        return true;
    }
    int fd_;
};

// The body of an OP_MSG reply (flagBits 0, one kind-0 section), as a copy.
bson_owner op_msg_body(const std::vector<uint8_t>& msg) {
    REQUIRE(get_i32(msg.data() + 12) == op_msg);
    REQUIRE(get_i32(msg.data() + 16) == 0);
    REQUIRE(msg[20] == 0);
    bson_t view;
    REQUIRE(bson_init_static(&view, msg.data() + 21, msg.size() - 21));
    return bson_owner(bson_copy(&view));
}

bson_owner command(raw_connection& c, const bson_t* body, int32_t request_id = 7) {
    c.send(message(op_msg, request_id, op_msg_payload(body)));
    auto reply = c.receive();
    REQUIRE(reply);
    REQUIRE(get_i32(reply->data() + 8) == request_id);
    return op_msg_body(*reply);
}

bson_type_t type_of(const bson_t* doc, const char* key) {
    bson_iter_t it;
    return bson_iter_init_find(&it, doc, key) ? bson_iter_type(&it) : BSON_TYPE_EOD;
}
double ok_of(const bson_t* doc) {
    bson_iter_t it;
    REQUIRE(bson_iter_init_find(&it, doc, "ok"));
    REQUIRE(BSON_ITER_HOLDS_DOUBLE(&it));
    return bson_iter_double(&it);
}

void require_serving(const standin& s) {
    raw_connection c(s.port());
    auto reply = command(c, json(R"({"ping": 1, "$db": "admin"})").get());
    REQUIRE(ok_of(reply.get()) == 1.0);
}

}  // namespace

TEST_CASE("OP_QUERY handshake is answered with OP_REPLY and the exact types", "[mongo][wire]") {
    standin s;
    for (const char* name : {"isMaster", "ismaster", "hello"}) {
        CAPTURE(name);
        raw_connection c(s.port());
        bson_t q;
        bson_init(&q);
        BSON_APPEND_INT32(&q, name, 1);
        c.send(message(op_query, 0, op_query_payload("admin.$cmd", &q)));  // libmongoc: id 0
        bson_destroy(&q);
        auto reply = c.receive();
        REQUIRE(reply);
        REQUIRE(get_i32(reply->data() + 8) == 0);  // responseTo
        REQUIRE(get_i32(reply->data() + 12) == op_reply);
        REQUIRE(get_i32(reply->data() + 16) == 0);  // responseFlags
        REQUIRE(get_i32(reply->data() + 32) == 1);  // numberReturned
        bson_t doc;
        REQUIRE(bson_init_static(&doc, reply->data() + 36, reply->size() - 36));
        const bool is_hello = std::string(name) == "hello";
        CHECK(type_of(&doc, "isWritablePrimary") == (is_hello ? BSON_TYPE_BOOL : BSON_TYPE_EOD));
        CHECK(type_of(&doc, "ismaster") == (is_hello ? BSON_TYPE_EOD : BSON_TYPE_BOOL));
        CHECK(type_of(&doc, "helloOk") == BSON_TYPE_BOOL);
        for (const char* key :
             {"maxBsonObjectSize", "maxMessageSizeBytes", "maxWriteBatchSize",
              "logicalSessionTimeoutMinutes", "connectionId", "minWireVersion", "maxWireVersion"})
            CHECK(type_of(&doc, key) == BSON_TYPE_INT32);
        CHECK(type_of(&doc, "localTime") == BSON_TYPE_DATE_TIME);
        CHECK(type_of(&doc, "readOnly") == BSON_TYPE_BOOL);
        CHECK(type_of(&doc, "ok") == BSON_TYPE_DOUBLE);
        for (const char* absent : {"topologyVersion", "compression", "setName", "hosts",
                                   "$clusterTime", "operationTime"})
            CHECK(type_of(&doc, absent) == BSON_TYPE_EOD);
    }
}

TEST_CASE("OP_MSG: kind-1 documents are merged, moreToCome gets no reply", "[mongo][wire]") {
    standin s;
    raw_connection c(s.port());
    auto body = json(R"({"insert": "t", "$db": "w"})");
    auto d1 = json(R"({"_id": 1, "x": "a"})");
    auto d2 = json(R"({"_id": 2, "x": "b"})");
    std::vector<uint8_t> p;
    put_i32(p, 0);
    p.push_back(0);
    put_doc(p, body.get());
    std::vector<uint8_t> seq;
    put_bytes(seq, "documents", 10);
    put_doc(seq, d1.get());
    put_doc(seq, d2.get());
    p.push_back(1);
    put_i32(p, static_cast<int32_t>(4 + seq.size()));
    p.insert(p.end(), seq.begin(), seq.end());
    c.send(message(op_msg, 11, p));
    auto reply = c.receive();
    REQUIRE(reply);
    auto r = op_msg_body(*reply);
    bson_iter_t it;
    REQUIRE(bson_iter_init_find(&it, r.get(), "n"));
    REQUIRE(BSON_ITER_HOLDS_INT32(&it));
    REQUIRE(bson_iter_int32(&it) == 2);

    // moreToCome (flag bit 1): executed, not answered; the next reply is the ping's.
    auto del = json(R"({"delete": "t", "deletes": [{"q": {"_id": 1}, "limit": 1}], "$db": "w"})");
    c.send(message(op_msg, 12, op_msg_payload(del.get(), 2)));
    auto count = command(c, json(R"({"count": "t", "$db": "w"})").get(), 13);
    REQUIRE(bson_iter_init_find(&it, count.get(), "n"));
    REQUIRE(bson_iter_int32(&it) == 1);
}

TEST_CASE("unknown command: ok 0.0, code int32 59, CommandNotFound", "[mongo][wire]") {
    standin s;
    raw_connection c(s.port());
    auto r = command(c, json(R"({"frobnicate": 1, "$db": "admin"})").get());
    REQUIRE(ok_of(r.get()) == 0.0);
    bson_iter_t it;
    REQUIRE(bson_iter_init_find(&it, r.get(), "code"));
    REQUIRE(BSON_ITER_HOLDS_INT32(&it));
    REQUIRE(bson_iter_int32(&it) == 59);
    REQUIRE(bson_iter_init_find(&it, r.get(), "codeName"));
    REQUIRE(std::string(bson_iter_utf8(&it, nullptr)) == "CommandNotFound");
}

TEST_CASE("malformed messages close their connection only", "[mongo][wire]") {
    standin s({"--message-timeout-ms", "300"});
    raw_connection bystander(s.port());  // stays open and keeps working throughout
    auto ping = json(R"({"ping": 1, "$db": "admin"})");
    const auto good = op_msg_payload(ping.get());

    std::vector<uint8_t> truncated_bson = good;  // the body claims 200 bytes
    truncated_bson[5] = 200;
    std::vector<uint8_t> corrupt_bson = good;  // an element of type 0x7f does not exist
    corrupt_bson[9] = 0x7f;
    std::vector<uint8_t> bad_kind = good;
    bad_kind[4] = 5;
    auto find = json(R"({"find": "t"})");
    // A nested document whose last byte is not its terminator (bson_validate misses it).
    auto nested = json(R"({"find": "t", "filter": {"a": 1}, "$db": "admin"})");
    std::vector<uint8_t> bad_nested = op_msg_payload(nested.get());
    const std::size_t filter_end = 5 + 4 + 1 + 5 + 7 + 7 + 12 - 1;  // body, find, filter doc
    REQUIRE(bad_nested[filter_end] == 0);
    bad_nested[filter_end] = 1;
    // Nesting 200 documents deep (MongoDB allows 100).
    std::vector<uint8_t> deep = {5, 0, 0, 0, 0};
    for (int i = 0; i < 200; ++i) {
        std::vector<uint8_t> outer;
        put_i32(outer, static_cast<int32_t>(4 + 3 + deep.size() + 1));
        outer.insert(outer.end(), {3, 'a', 0});
        outer.insert(outer.end(), deep.begin(), deep.end());
        outer.push_back(0);
        deep = std::move(outer);
    }
    std::vector<uint8_t> deep_payload = {0, 0, 0, 0, 0};
    deep_payload.insert(deep_payload.end(), deep.begin(), deep.end());

    struct bad {
        const char* what;
        std::vector<uint8_t> bytes;
    };
    std::vector<bad> cases = {
        {"length below the header", message(op_msg, 1, {}, 8)},
        {"negative length", message(op_msg, 1, {}, -5)},
        {"oversized (50 MB)", message(op_msg, 1, good, 50'000'000)},
        {"truncated BSON", message(op_msg, 1, truncated_bson)},
        {"corrupt BSON element", message(op_msg, 1, corrupt_bson)},
        {"unknown section kind", message(op_msg, 1, bad_kind)},
        {"bad nested terminator", message(op_msg, 1, bad_nested)},
        {"200 levels of nesting", message(op_msg, 1, deep_payload)},
        {"unknown required flag bit", message(op_msg, 1, op_msg_payload(ping.get(), 1u << 4))},
        {"no section", message(op_msg, 1, {0, 0, 0, 0})},
        {"unknown opcode", message(9999, 1, good)},
        {"OP_COMPRESSED", message(op_compressed, 1, good)},
        {"OP_QUERY that is not a handshake",
         message(op_query, 1, op_query_payload("test.$cmd", find.get()))},
        {"OP_QUERY on a collection", message(op_query, 1, op_query_payload("test.t", ping.get()))},
    };
    for (const auto& c : cases) {
        CAPTURE(c.what);
        raw_connection conn(s.port());
        conn.send(c.bytes);
        CHECK(conn.closed_by_server());
        require_serving(s);
    }
    // A message cut short by the client: the server waits, then sees the close.
    {
        raw_connection conn(s.port());
        auto full = message(op_msg, 1, good);
        conn.send(std::vector<uint8_t>(full.begin(), full.begin() + 20));
    }
    // A message that stops coming: closed after --message-timeout-ms (300 ms here).
    {
        raw_connection conn(s.port());
        auto full = message(op_msg, 1, good);
        const auto start = std::chrono::steady_clock::now();
        conn.send(std::vector<uint8_t>(full.begin(), full.begin() + 20));
        CHECK(conn.closed_by_server());
        CHECK(std::chrono::steady_clock::now() - start >= std::chrono::milliseconds(250));
    }
    auto r = command(bystander, ping.get(), 99);
    REQUIRE(ok_of(r.get()) == 1.0);
    REQUIRE(s.running());
}

TEST_CASE("standinFault over the wire: failNext, then healed", "[mongo][wire]") {
    standin s;
    raw_connection c(s.port());
    auto set = command(c, json(R"({"standinFault": 1, "failNext": 2, "failCode": 11600,
                                   "failMessage": "shutting down", "$db": "admin"})")
                              .get());
    REQUIRE(ok_of(set.get()) == 1.0);
    auto ping = json(R"({"ping": 1, "$db": "admin"})");
    for (int i = 0; i < 2; ++i) {
        auto r = command(c, ping.get());
        REQUIRE(ok_of(r.get()) == 0.0);
        bson_iter_t it;
        REQUIRE(bson_iter_init_find(&it, r.get(), "code"));
        REQUIRE(bson_iter_int32(&it) == 11600);
        REQUIRE(bson_iter_init_find(&it, r.get(), "errmsg"));
        REQUIRE(std::string(bson_iter_utf8(&it, nullptr)) == "shutting down");
    }
    REQUIRE(ok_of(command(c, ping.get()).get()) == 1.0);
    // The handshake is never failed: drivers must stay able to connect.
    s.fail_next(1, 6);
    REQUIRE(ok_of(command(c, json(R"({"hello": 1, "$db": "admin"})").get()).get()) == 1.0);
    REQUIRE(ok_of(command(c, ping.get()).get()) == 0.0);
}

TEST_CASE("dropConnections closes every open connection", "[mongo][wire]") {
    standin s({"--threads", "3"});  // connections spread over three I/O threads
    raw_connection a(s.port()), b(s.port());
    auto ping = json(R"({"ping": 1, "$db": "admin"})");
    REQUIRE(ok_of(command(a, ping.get()).get()) == 1.0);
    REQUIRE(ok_of(command(b, ping.get()).get()) == 1.0);
    // The asking connection gets its answer first, then is closed with the others.
    auto r =
        command(a, json(R"({"standinFault": 1, "dropConnections": true, "$db": "admin"})").get());
    REQUIRE(ok_of(r.get()) == 1.0);
    REQUIRE(a.closed_by_server());
    REQUIRE(b.closed_by_server());
    require_serving(s);

    raw_connection c(s.port());
    REQUIRE(ok_of(command(c, ping.get()).get()) == 1.0);
    s.drop_connections();  // through stdin: returns once the closes have run
    REQUIRE(c.closed_by_server());
}

TEST_CASE("refused connections are closed at once, open ones keep working", "[mongo][wire]") {
    standin s;
    raw_connection open(s.port());
    auto ping = json(R"({"ping": 1, "$db": "admin"})");
    REQUIRE(ok_of(command(open, ping.get()).get()) == 1.0);
    s.refuse_connections(true);
    {
        raw_connection refused(s.port());  // the kernel accepts; the stand-in closes
        refused.send(message(op_msg, 1, op_msg_payload(ping.get())));
        REQUIRE(refused.closed_by_server());
    }
    REQUIRE(ok_of(command(open, ping.get()).get()) == 1.0);
    s.refuse_connections(false);
    require_serving(s);
}

TEST_CASE("randomly corrupted messages never take the process down", "[mongo][wire]") {
    standin s({"--threads", "2"});
    auto find = json(R"({"find": "t", "filter": {"a": 1}, "limit": 1, "$db": "db"})");
    const auto valid = message(op_msg, 5, op_msg_payload(find.get()));
    std::mt19937 rng(12345);  // fixed seed: a failure can be replayed
    for (int i = 0; i < 600; ++i) {
        auto bytes = valid;
        const int flips = 1 + static_cast<int>(rng() % 4);
        for (int f = 0; f < flips; ++f) bytes[rng() % bytes.size()] = static_cast<uint8_t>(rng());
        if (rng() % 4 == 0) bytes.resize(rng() % bytes.size());
        raw_connection c(s.port());
        if (!bytes.empty()) c.send(bytes);
        c.shutdown_write();  // a length that claims more bytes then meets end of stream
        c.drain();           // a reply, or a close: either is fine; a hang fails
    }
    require_serving(s);
    REQUIRE(s.running());
}

// ---- Authentication (SCRAM) and TLS at the byte level ----

namespace {

int32_t code_of(const bson_t* doc) {
    bson_iter_t it;
    return bson_iter_init_find(&it, doc, "code") && BSON_ITER_HOLDS_INT32(&it)
               ? bson_iter_int32(&it)
               : 0;
}

std::string payload_of(const bson_t* doc) {
    bson_iter_t it;
    if (!bson_iter_init_find(&it, doc, "payload") || !BSON_ITER_HOLDS_BINARY(&it)) return {};
    bson_subtype_t subtype;
    uint32_t len = 0;
    const uint8_t* data = nullptr;
    bson_iter_binary(&it, &subtype, &len, &data);
    return {reinterpret_cast<const char*>(data), len};
}

// {saslStart: 1, mechanism, payload: BinData(0, payload), $db: "admin"}
bson_owner sasl_start(const std::string& payload, const char* mechanism = "SCRAM-SHA-256") {
    bson_owner b(bson_new());
    BSON_APPEND_INT32(b.doc, "saslStart", 1);
    BSON_APPEND_UTF8(b.doc, "mechanism", mechanism);
    bson_append_binary(b.doc, "payload", 7, BSON_SUBTYPE_BINARY,
                       reinterpret_cast<const uint8_t*>(payload.data()),
                       static_cast<uint32_t>(payload.size()));
    BSON_APPEND_UTF8(b.doc, "$db", "admin");
    return b;
}

bson_owner sasl_continue(int32_t conversation, const std::string& payload) {
    bson_owner b(bson_new());
    BSON_APPEND_INT32(b.doc, "saslContinue", 1);
    BSON_APPEND_INT32(b.doc, "conversationId", conversation);
    bson_append_binary(b.doc, "payload", 7, BSON_SUBTYPE_BINARY,
                       reinterpret_cast<const uint8_t*>(payload.data()),
                       static_cast<uint32_t>(payload.size()));
    BSON_APPEND_UTF8(b.doc, "$db", "admin");
    return b;
}

// A connection that still answers: hello runs before authentication too.
bool answers_hello(raw_connection& c) {
    auto reply = command(c, json(R"({"hello": 1, "$db": "admin"})").get());
    return ok_of(reply.get()) == 1.0;
}

}  // namespace

TEST_CASE("with users, only the handshake and SASL run before authentication", "[mongo][wire]") {
    standin s({"--user", "ann:secret-1"});
    raw_connection c(s.port());
    CHECK(answers_hello(c));
    for (const char* cmd : {R"({"ping": 1, "$db": "admin"})", R"({"find": "t", "$db": "x"})",
                            R"({"standinFault": 1, "$db": "admin"})"}) {
        CAPTURE(cmd);
        auto reply = command(c, json(cmd).get());
        CHECK(ok_of(reply.get()) == 0.0);
        CHECK(code_of(reply.get()) == 13);
        bson_iter_t it;
        REQUIRE(bson_iter_init_find(&it, reply.get(), "codeName"));
        CHECK(std::string(bson_iter_utf8(&it, nullptr)) == "Unauthorized");
    }
}

TEST_CASE("hello: saslSupportedMechs per user, speculativeAuthenticate answered", "[mongo][wire]") {
    standin s({"--user", "ann:secret-1", "--user", "old:secret-2:SCRAM-SHA-1"});
    raw_connection c(s.port());
    auto mechs_of = [&](const char* user) {
        bson_owner hello(bson_new());
        BSON_APPEND_INT32(hello.doc, "hello", 1);
        BSON_APPEND_UTF8(hello.doc, "saslSupportedMechs", user);
        BSON_APPEND_UTF8(hello.doc, "$db", "admin");
        auto reply = command(c, hello.get());
        std::vector<std::string> out;
        bson_iter_t it, m;
        if (bson_iter_init_find(&it, reply.get(), "saslSupportedMechs") &&
            bson_iter_recurse(&it, &m))
            while (bson_iter_next(&m)) out.emplace_back(bson_iter_utf8(&m, nullptr));
        return out;
    };
    CHECK(mechs_of("admin.ann") == std::vector<std::string>{"SCRAM-SHA-1", "SCRAM-SHA-256"});
    CHECK(mechs_of("admin.old") == std::vector<std::string>{"SCRAM-SHA-1"});
    CHECK(mechs_of("admin.nobody").empty());
    CHECK(mechs_of("other.ann").empty());  // users live in admin

    auto start = sasl_start("n,,n=ann,r=clientnonce");
    bson_owner hello(bson_new());
    BSON_APPEND_INT32(hello.doc, "hello", 1);
    bson_t spec;
    BSON_APPEND_DOCUMENT_BEGIN(hello.doc, "speculativeAuthenticate", &spec);
    bson_iter_t it;
    bson_iter_init(&it, start.get());
    while (bson_iter_next(&it))
        if (std::string(bson_iter_key(&it)) != "$db") bson_append_iter(&spec, nullptr, 0, &it);
    BSON_APPEND_UTF8(&spec, "db", "admin");
    bson_append_document_end(hello.doc, &spec);
    BSON_APPEND_UTF8(hello.doc, "$db", "admin");
    auto reply = command(c, hello.get());
    bson_iter_t sub;
    REQUIRE(bson_iter_init_find(&it, reply.get(), "speculativeAuthenticate"));
    REQUIRE(BSON_ITER_HOLDS_DOCUMENT(&it));
    uint32_t len = 0;
    const uint8_t* data = nullptr;
    bson_iter_document(&it, &len, &data);
    bson_t doc;
    REQUIRE(bson_init_static(&doc, data, len));
    CHECK(type_of(&doc, "conversationId") == BSON_TYPE_INT32);
    REQUIRE(bson_iter_init_find(&sub, &doc, "done"));
    CHECK(!bson_iter_bool(&sub));
    const std::string server_first = payload_of(&doc);
    CHECK(server_first.rfind("r=clientnonce", 0) == 0);  // our nonce, extended by the server
    CHECK(server_first.size() > std::string("r=clientnonce").size() + 20);
    CHECK(server_first.find(",s=") != std::string::npos);
    CHECK(server_first.find(",i=4096") != std::string::npos);
}

TEST_CASE("malformed SASL payloads fail that conversation only", "[mongo][wire]") {
    standin s({"--user", "ann:secret-1"});
    raw_connection bystander(s.port());
    // bson_owner is not copyable safely: each case builds its body when it runs.
    struct bad {
        const char* what;
        std::function<bson_owner()> body;
        int32_t code;
    };
    const std::vector<bad> cases = {
        {"no payload",
         [] { return json(R"({"saslStart": 1, "mechanism": "SCRAM-SHA-256", "$db": "admin"})"); },
         18},
        {"payload of the wrong type",
         [] {
             return json(
                 R"({"saslStart": 1, "mechanism": "SCRAM-SHA-256", "payload": 5, "$db": "admin"})");
         },
         18},
        {"unknown mechanism", [] { return sasl_start("n,,n=ann,r=x", "PLAIN"); }, 334},
        {"empty payload", [] { return sasl_start(""); }, 18},
        {"channel binding asked for", [] { return sasl_start("p=tls-unique,,n=ann,r=x"); }, 18},
        {"no nonce", [] { return sasl_start("n,,n=ann"); }, 18},
        {"attributes out of order", [] { return sasl_start("n,,r=x,n=ann"); }, 18},
        {"bad escape in the user name", [] { return sasl_start("n,,n=a=ZZn,r=x"); }, 18},
        {"binary garbage", [] { return sasl_start(std::string("n,,\0\xff\xfe,r=\x01", 10)); }, 18},
        {"unknown user", [] { return sasl_start("n,,n=nobody,r=x"); }, 18},
        {"saslContinue without saslStart", [] { return sasl_continue(1, "c=biws,r=x,p=AAAA"); },
         18},
    };
    for (const auto& b : cases) {
        CAPTURE(b.what);
        raw_connection c(s.port());
        auto reply = command(c, b.body().get());
        CHECK(ok_of(reply.get()) == 0.0);
        CHECK(code_of(reply.get()) == b.code);
        CHECK(answers_hello(c));  // an error, not a closed connection
    }

    // A started conversation, then a broken client-final: each fails and resets it.
    for (const std::string& final_message :
         {std::string("c=biws,r=WRONGNONCE,p=AAAA"), std::string("c=biws"),
          std::string("c=eHl6,r=@NONCE@,p=AAAA"), std::string("c=biws,r=@NONCE@,p=not*base64"),
          std::string("c=biws,r=@NONCE@,p=AAAA"),  // a proof of the wrong length
          std::string("c=biws,r=@NONCE@,p=") + std::string(44, 'A')}) {  // wrong proof
        CAPTURE(final_message);
        raw_connection c(s.port());
        auto first = command(c, sasl_start("n,,n=ann,r=abc").get());
        REQUIRE(ok_of(first.get()) == 1.0);
        const std::string server_first = payload_of(first.get());
        const std::string nonce = server_first.substr(2, server_first.find(',') - 2);
        std::string msg = final_message;
        if (auto at = msg.find("@NONCE@"); at != std::string::npos) msg.replace(at, 7, nonce);
        bson_iter_t it;
        REQUIRE(bson_iter_init_find(&it, first.get(), "conversationId"));
        auto reply = command(c, sasl_continue(bson_iter_int32(&it), msg).get());
        CHECK(ok_of(reply.get()) == 0.0);
        CHECK(code_of(reply.get()) == 18);
        // The conversation is over: continuing it fails too, and nothing is authorized.
        auto again = command(c, sasl_continue(bson_iter_int32(&it), msg).get());
        CHECK(code_of(again.get()) == 18);
        auto ping = command(c, json(R"({"ping": 1, "$db": "admin"})").get());
        CHECK(code_of(ping.get()) == 13);
    }
    CHECK(answers_hello(bystander));
}

TEST_CASE("a huge SASL payload is refused, a 20 MB one too, without closing", "[mongo][wire]") {
    standin s({"--user", "ann:secret-1"});
    for (std::size_t size : {std::size_t(5000), std::size_t(20) << 20}) {
        CAPTURE(size);
        raw_connection c(s.port());
        auto reply = command(c, sasl_start("n,,n=ann,r=" + std::string(size, 'x')).get());
        CHECK(ok_of(reply.get()) == 0.0);
        CHECK(code_of(reply.get()) == 18);
        bson_iter_t it;
        REQUIRE(bson_iter_init_find(&it, reply.get(), "errmsg"));
        CHECK(std::string(bson_iter_utf8(&it, nullptr)) == "SASL payload too large");
        CHECK(answers_hello(c));
    }
}

TEST_CASE("a conversation that never finishes is closed after --auth-timeout-ms", "[mongo][wire]") {
    standin s({"--user", "ann:secret-1", "--auth-timeout-ms", "300"});
    raw_connection idle(s.port());  // no conversation: not subject to the timeout
    raw_connection c(s.port());
    auto first = command(c, sasl_start("n,,n=ann,r=abc").get());
    REQUIRE(ok_of(first.get()) == 1.0);
    const auto start = std::chrono::steady_clock::now();
    CHECK(c.closed_by_server());  // within the 5 s receive timeout
    CHECK(std::chrono::steady_clock::now() - start >= std::chrono::milliseconds(250));
    CHECK(answers_hello(idle));
}

TEST_CASE("a plain client on a TLS port is closed, TLS options are checked", "[mongo][wire]") {
    const std::string dir = std::string(MAKE_TEST_CERTS_DIR) + "-" + std::to_string(::getpid());
    REQUIRE(std::system((std::string(MAKE_TEST_CERTS) + " " + dir).c_str()) == 0);
    {
        standin s({"--tls-cert", dir + "/server.pem", "--tls-key", dir + "/server.key"});
        for (int i = 0; i < 3; ++i) {
            raw_connection c(s.port());
            c.send(message(op_msg, 1, op_msg_payload(json(R"({"ping": 1, "$db": "a"})").get())));
            CHECK(c.closed_by_server());
        }
        CHECK(s.running());
        CHECK(s.state().rfind("ok ", 0) == 0);  // still answering its controls
    }
    // Bad TLS options: refused at start with a message, never a half-configured server.
    for (std::vector<std::string> args :
         {std::vector<std::string>{"--tls-cert", dir + "/server.pem"},
          {"--tls-cert", dir + "/server.pem", "--tls-key", dir + "/missing.key"},
          {"--tls-cert", dir + "/server.pem", "--tls-key", dir + "/other-ca.key"},
          {"--tls-cert", dir + "/server.pem", "--tls-key", dir + "/server.key",
           "--tls-require-client-cert"},
          {"--user", "ann"},
          {"--user", "ann:pw:SCRAM-MD5"},
          {"--user", "ann:caf\xc3\xa9"},  // non-ASCII for SCRAM-SHA-256: refused, not guessed
          {"--user-env", "ann:COROSERVE_NO_SUCH_VARIABLE"}}) {
        CAPTURE(args);
        CHECK_THROWS_AS(standin(args), std::runtime_error);
    }
    std::filesystem::remove_all(dir);
}
