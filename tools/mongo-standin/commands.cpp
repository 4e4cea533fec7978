// commands: one handler per supported command. Reply shapes and BSON types follow
// the shared notes/mongo-wire-protocol.md exactly (int32 sizes and wire versions, bool flags,
// int64 cursor ids, double ok): drivers check them strictly and some fail silently.
#include "commands.hpp"

#include <algorithm>
#include <chrono>
#include <string>
#include <string_view>

#include "replset.hpp"

namespace standin {
namespace {

constexpr int32_t code_bad_value = 2;
constexpr int32_t code_cursor_not_found = 43;
constexpr int32_t code_command_not_found = 59;
constexpr int32_t code_invalid_namespace = 73;
constexpr int32_t code_missing_db = 40571;
constexpr int32_t code_type_mismatch = 14;
constexpr int32_t code_not_writable_primary = 10107;
constexpr int32_t code_not_primary_no_secondary_ok = 13435;
constexpr int64_t default_first_batch = 101;  // what mongod returns without batchSize

// Everything a handler needs about the command being run.
struct call {
    services& s;
    const bson_t* body;
    std::string_view name;
    bson_iter_t command;  // the first field: {find: "coll", ...} -> "coll"
    std::string_view db;
    int32_t connection_id;
    auth_state& auth;
    bson_t* reply;

    std::string ns(std::string_view coll) const {
        std::string out(db);
        out += '.';
        out += coll;
        return out;
    }
    bool field(const char* key, bson_iter_t& it) const {
        return bson_iter_init_find(&it, body, key);
    }
};

void ok(bson_t* reply) {
    BSON_APPEND_DOUBLE(reply, "ok", 1.0);
}

void fail(bson_t* reply, int32_t code, std::string_view message, std::string_view code_name = {}) {
    bson_reinit(reply);  // drop anything a handler appended before it found the error
    BSON_APPEND_DOUBLE(reply, "ok", 0.0);
    append_utf8(reply, "errmsg", message);
    BSON_APPEND_INT32(reply, "code", code);
    if (!code_name.empty()) append_utf8(reply, "codeName", code_name);
}

// The collection named by the command's first field, or empty after failing the reply.
std::string_view collection_of(call& c) {
    if (!BSON_ITER_HOLDS_UTF8(&c.command) || utf8_of(c.command).empty()) {
        fail(c.reply, code_invalid_namespace,
             "collection name must be a non-empty string in '" + std::string(c.name) + "'",
             "InvalidNamespace");
        return {};
    }
    return utf8_of(c.command);
}

// An optional numeric field; false (and the reply failed) when present but not a number.
bool optional_number(call& c, const char* key, int64_t& out) {
    bson_iter_t it;
    if (!c.field(key, it) || BSON_ITER_HOLDS_NULL(&it)) return true;
    auto v = as_int64(it);
    if (!v) {
        fail(c.reply, code_type_mismatch, std::string("'") + key + "' must be a number",
             "TypeMismatch");
        return false;
    }
    out = *v;
    return true;
}

// The filter under `key` (absent = match all), or nullopt after failing the reply.
// Where a read runs: a lagging secondary has its own, older store.
store& read_store(const call& c) {
    if (c.s.lagged && !c.s.rs->is_primary(c.s.member)) return c.s.lagged->data();
    return c.s.db;
}

std::optional<filter> filter_of(call& c, const char* key, const bson_iter_t* at = nullptr) {
    bson_iter_t it;
    bool present = at ? (it = *at, true) : c.field(key, it);
    if (!present || BSON_ITER_HOLDS_NULL(&it)) return filter{};
    if (!BSON_ITER_HOLDS_DOCUMENT(&it)) {
        fail(c.reply, code_type_mismatch, std::string("'") + key + "' must be a document",
             "TypeMismatch");
        return std::nullopt;
    }
    auto parsed = filter::parse(subdocument_of(it));
    if (auto* err = std::get_if<std::string>(&parsed)) {
        fail(c.reply, code_bad_value, *err, "BadValue");
        return std::nullopt;
    }
    return std::get<filter>(std::move(parsed));
}

void append_docs(bson_t* parent, const char* key, std::span<const doc_ptr> docs) {
    bson_t array;
    bson_append_array_begin(parent, key, -1, &array);
    char key_buf[16];
    for (uint32_t i = 0; i < docs.size(); ++i) {
        const char* k = nullptr;
        std::size_t k_len = bson_uint32_to_string(i, &k, key_buf, sizeof key_buf);
        bson_view doc(docs[i]->span());
        bson_append_document(&array, k, static_cast<int>(k_len), doc.get());
    }
    bson_append_array_end(parent, &array);
}

void append_cursor(bson_t* reply, const char* batch_key, std::span<const doc_ptr> docs, int64_t id,
                   std::string_view ns) {
    bson_t cursor;
    BSON_APPEND_DOCUMENT_BEGIN(reply, "cursor", &cursor);
    append_docs(&cursor, batch_key, docs);
    BSON_APPEND_INT64(&cursor, "id", id);
    append_utf8(&cursor, "ns", ns);
    bson_append_document_end(reply, &cursor);
    ok(reply);
}

// What a replica-set member adds to hello (server discovery and monitoring specification):
// its role, the set's name, version and hosts, the primary, itself, the primary's
// electionId, and the topologyVersion an awaitable hello waits on.
void append_member(call& c, const replica_set::member_view& v) {
    const replica_set& rs = *c.s.rs;
    bson_t* r = c.reply;
    BSON_APPEND_BOOL(r, "secondary", v.secondary);
    append_utf8(r, "setName", rs.name());
    BSON_APPEND_INT32(r, "setVersion", 1);
    bson_t hosts;
    BSON_APPEND_ARRAY_BEGIN(r, "hosts", &hosts);
    for (std::size_t i = 0; i < rs.hosts().size(); ++i)
        append_utf8(&hosts, std::to_string(i), rs.hosts()[i]);
    bson_append_array_end(r, &hosts);
    if (!v.primary_host.empty()) append_utf8(r, "primary", v.primary_host);
    append_utf8(r, "me", rs.hosts()[static_cast<std::size_t>(c.s.member)]);
    if (v.primary) BSON_APPEND_OID(r, "electionId", &v.election_id);
    bson_t version;
    BSON_APPEND_DOCUMENT_BEGIN(r, "topologyVersion", &version);
    BSON_APPEND_OID(&version, "processId", &v.process_id);
    BSON_APPEND_INT64(&version, "counter", v.counter);
    bson_append_document_end(r, &version);
}

void hello(call& c) {
    bson_t* r = c.reply;
    const auto now = std::chrono::duration_cast<std::chrono::milliseconds>(
        std::chrono::system_clock::now().time_since_epoch());
    std::optional<replica_set::member_view> member;
    if (c.s.rs) member = c.s.rs->view(c.s.member);
    BSON_APPEND_BOOL(r, c.name == "hello" ? "isWritablePrimary" : "ismaster",
                     !member || member->primary);
    BSON_APPEND_BOOL(r, "helloOk", true);
    BSON_APPEND_INT32(r, "maxBsonObjectSize", 16 * 1024 * 1024);
    BSON_APPEND_INT32(r, "maxMessageSizeBytes", 48'000'000);
    BSON_APPEND_INT32(r, "maxWriteBatchSize", 100'000);
    BSON_APPEND_DATE_TIME(r, "localTime", now.count());
    BSON_APPEND_INT32(r, "logicalSessionTimeoutMinutes", 30);
    BSON_APPEND_INT32(r, "connectionId", c.connection_id);
    BSON_APPEND_INT32(r, "minWireVersion", 0);
    BSON_APPEND_INT32(r, "maxWireVersion", 17);
    BSON_APPEND_BOOL(r, "readOnly", false);
    if (member) append_member(c, *member);
    append_hello_auth(c.s.users, c.auth, c.body, r);
    ok(r);
}

// {hello, topologyVersion: {processId, counter}, maxAwaitTimeMS}: from a client that has
// seen this member's current topologyVersion it must wait (for a change or the time), not be
// answered at once, or its monitor would spin. nullopt: not an awaitable hello.
std::optional<hello_wait> awaitable_hello(const call& c) {
    bson_iter_t version, max_await, process_id, counter;
    if (!c.field("topologyVersion", version) || !BSON_ITER_HOLDS_DOCUMENT(&version) ||
        !c.field("maxAwaitTimeMS", max_await))
        return std::nullopt;
    auto ms = as_int64(max_await);
    if (!ms || *ms < 0) return std::nullopt;
    bson_view doc(subdocument_of(version));
    if (!bson_iter_init_find(&process_id, doc.get(), "processId") ||
        !BSON_ITER_HOLDS_OID(&process_id) || !bson_iter_init_find(&counter, doc.get(), "counter"))
        return std::nullopt;
    auto seen = as_int64(counter);
    if (!seen) return std::nullopt;
    return hello_wait{*seen, std::chrono::milliseconds(std::min<int64_t>(*ms, 3'600'000)),
                      c.s.rs->up_to_date(c.s.member, *bson_iter_oid(&process_id), *seen)};
}

void ping(call& c) {
    ok(c.reply);
}

void build_info(call& c) {
    append_utf8(c.reply, "version", "6.0.0");
    append_utf8(c.reply, "gitVersion", "mongo-standin");
    bson_t array;
    BSON_APPEND_ARRAY_BEGIN(c.reply, "versionArray", &array);
    BSON_APPEND_INT32(&array, "0", 6);
    BSON_APPEND_INT32(&array, "1", 0);
    BSON_APPEND_INT32(&array, "2", 0);
    BSON_APPEND_INT32(&array, "3", 0);
    bson_append_array_end(c.reply, &array);
    BSON_APPEND_INT32(c.reply, "bits", 64);
    BSON_APPEND_INT32(c.reply, "maxBsonObjectSize", 16 * 1024 * 1024);
    ok(c.reply);
}

void find(call& c) {
    auto coll = collection_of(c);
    if (coll.empty()) return;
    auto f = filter_of(c, "filter");
    if (!f) return;
    for (const char* unsupported : {"sort", "projection"}) {
        bson_iter_t it;
        if (c.field(unsupported, it) && BSON_ITER_HOLDS_DOCUMENT(&it) &&
            subdocument_of(it).size() > 5)
            return fail(c.reply, code_bad_value,
                        std::string("the stand-in does not support '") + unsupported + "'",
                        "BadValue");
    }
    int64_t skip = 0, limit = 0, batch = -1;
    if (!optional_number(c, "skip", skip) || !optional_number(c, "limit", limit) ||
        !optional_number(c, "batchSize", batch))
        return;
    bson_iter_t it;
    bool single_batch = c.field("singleBatch", it) && as_flag(it);
    if (limit < 0) {
        limit = -limit;
        single_batch = true;
    }
    if (skip < 0 || (c.field("batchSize", it) && batch < 0))
        return fail(c.reply, code_bad_value, "skip and batchSize must not be negative", "BadValue");

    const std::string ns = c.ns(coll);
    auto docs = read_store(c).find(ns, *f, skip, limit);
    const int64_t first = batch < 0 ? default_first_batch : batch;
    const std::size_t n = first == 0 ? 0 : batch_count(docs, 0, first);
    int64_t id = 0;
    if (!single_batch && n < docs.size()) {
        std::vector<doc_ptr> rest(docs.begin() + static_cast<std::ptrdiff_t>(n), docs.end());
        id = c.s.cursors.open({ns, std::move(rest), 0});
    }
    append_cursor(c.reply, "firstBatch", std::span(docs).first(n), id, ns);
    if (c.s.rs) c.s.rs->count_find(c.s.member);
}

void get_more(call& c) {
    auto id = as_int64(c.command);
    bson_iter_t it;
    if (!id || !c.field("collection", it) || !BSON_ITER_HOLDS_UTF8(&it))
        return fail(c.reply, code_type_mismatch,
                    "getMore needs a numeric cursor id and a 'collection' string", "TypeMismatch");
    const std::string ns = c.ns(utf8_of(it));
    int64_t batch = 0;
    if (!optional_number(c, "batchSize", batch)) return;
    auto result = c.s.cursors.next_batch(*id, ns, batch < 0 ? 0 : batch);
    if (!result)
        return fail(c.reply, code_cursor_not_found,
                    "cursor id " + std::to_string(*id) + " not found", "CursorNotFound");
    append_cursor(c.reply, "nextBatch", result->docs, result->id_after, ns);
}

void kill_cursors(call& c) {
    auto coll = collection_of(c);
    if (coll.empty()) return;
    bson_iter_t it;
    if (!c.field("cursors", it) || !BSON_ITER_HOLDS_ARRAY(&it))
        return fail(c.reply, code_type_mismatch, "killCursors needs a 'cursors' array",
                    "TypeMismatch");
    const std::string ns = c.ns(coll);
    std::vector<int64_t> killed, not_found;
    bson_view ids(subdocument_of(it));
    bson_iter_t id;
    bson_iter_init(&id, ids.get());
    while (bson_iter_next(&id)) {
        auto v = as_int64(id);
        if (v && c.s.cursors.kill(*v, ns))
            killed.push_back(*v);
        else if (v)
            not_found.push_back(*v);
    }
    auto append_ids = [&](const char* key, const std::vector<int64_t>& values) {
        bson_t array;
        bson_append_array_begin(c.reply, key, -1, &array);
        for (std::size_t i = 0; i < values.size(); ++i)
            BSON_APPEND_INT64(&array, std::to_string(i).c_str(), values[i]);
        bson_append_array_end(c.reply, &array);
    };
    append_ids("cursorsKilled", killed);
    append_ids("cursorsNotFound", not_found);
    append_ids("cursorsAlive", {});
    append_ids("cursorsUnknown", {});
    ok(c.reply);
}

void append_write_errors(bson_t* reply, const std::vector<write_error>& errors) {
    if (errors.empty()) return;
    bson_t array;
    BSON_APPEND_ARRAY_BEGIN(reply, "writeErrors", &array);
    for (std::size_t i = 0; i < errors.size(); ++i) {
        bson_t e;
        BSON_APPEND_DOCUMENT_BEGIN(&array, std::to_string(i).c_str(), &e);
        BSON_APPEND_INT32(&e, "index", errors[i].index);
        BSON_APPEND_INT32(&e, "code", errors[i].code);
        append_utf8(&e, "errmsg", errors[i].message);
        bson_append_document_end(&array, &e);
    }
    bson_append_array_end(reply, &array);
}

void insert(call& c) {
    auto coll = collection_of(c);
    if (coll.empty()) return;
    bson_iter_t it;
    if (!c.field("documents", it) || !BSON_ITER_HOLDS_ARRAY(&it))
        return fail(c.reply, code_type_mismatch, "insert needs a 'documents' array",
                    "TypeMismatch");
    std::vector<doc_ptr> docs;
    bson_view array(subdocument_of(it));
    bson_iter_t d;
    bson_iter_init(&d, array.get());
    while (bson_iter_next(&d)) {
        if (!BSON_ITER_HOLDS_DOCUMENT(&d))
            return fail(c.reply, code_type_mismatch, "insert documents must be documents",
                        "TypeMismatch");
        bson_view doc(subdocument_of(d));
        docs.push_back(make_stored_doc(doc.get()));
    }
    bool ordered = !c.field("ordered", it) || as_flag(it);
    std::vector<write_error> errors;
    if (c.s.lagged) c.s.lagged->insert(c.ns(coll), docs, ordered);
    int32_t n = c.s.db.insert(c.ns(coll), std::move(docs), ordered, errors);
    BSON_APPEND_INT32(c.reply, "n", n);
    append_write_errors(c.reply, errors);
    ok(c.reply);
}

void remove(call& c) {
    auto coll = collection_of(c);
    if (coll.empty()) return;
    bson_iter_t it;
    if (!c.field("deletes", it) || !BSON_ITER_HOLDS_ARRAY(&it))
        return fail(c.reply, code_type_mismatch, "delete needs a 'deletes' array", "TypeMismatch");
    const std::string ns = c.ns(coll);
    bson_view deletes(subdocument_of(it));
    bson_iter_t d;
    bson_iter_init(&d, deletes.get());
    int32_t n = 0;
    while (bson_iter_next(&d)) {
        if (!BSON_ITER_HOLDS_DOCUMENT(&d))
            return fail(c.reply, code_type_mismatch, "deletes must be documents", "TypeMismatch");
        bson_view spec(subdocument_of(d));
        bson_iter_t q, limit;
        if (!bson_iter_init_find(&q, spec.get(), "q"))
            return fail(c.reply, code_bad_value, "a delete needs 'q'", "BadValue");
        auto f = filter_of(c, "q", &q);
        if (!f) return;
        bool just_one =
            bson_iter_init_find(&limit, spec.get(), "limit") && bson_iter_as_int64(&limit) == 1;
        n += c.s.db.remove(ns, *f, just_one);
        if (c.s.lagged) {
            static constexpr uint8_t empty_doc[] = {5, 0, 0, 0, 0};  // q: null matches all
            c.s.lagged->remove(ns,
                               BSON_ITER_HOLDS_DOCUMENT(&q) ? subdocument_of(q)
                                                            : std::span<const uint8_t>(empty_doc),
                               just_one);
        }
    }
    BSON_APPEND_INT32(c.reply, "n", n);
    ok(c.reply);
}

void drop(call& c) {
    auto coll = collection_of(c);
    if (coll.empty()) return;
    const std::string ns = c.ns(coll);
    // Like MongoDB 7: dropping a missing collection succeeds (6.0 said "ns not found").
    c.s.db.drop(ns);
    if (c.s.lagged) c.s.lagged->drop(ns);
    append_utf8(c.reply, "ns", ns);
    BSON_APPEND_INT32(c.reply, "nIndexesWas", 1);
    ok(c.reply);
}

void count(call& c) {
    auto coll = collection_of(c);
    if (coll.empty()) return;
    auto f = filter_of(c, "query");
    if (!f) return;
    int64_t skip = 0, limit = 0;
    if (!optional_number(c, "skip", skip) || !optional_number(c, "limit", limit)) return;
    int64_t n = read_store(c).count(c.ns(coll), *f, skip, limit < 0 ? -limit : limit);
    BSON_APPEND_INT32(c.reply, "n", static_cast<int32_t>(n));
    ok(c.reply);
}

void list_collections(call& c) {
    auto f = filter_of(c, "filter");
    if (!f) return;
    std::vector<doc_ptr> entries;
    for (const auto& name : read_store(c).collections(c.db)) {
        bson_doc entry;
        append_utf8(entry.get(), "name", name);
        append_utf8(entry.get(), "type", "collection");
        bson_t sub;
        BSON_APPEND_DOCUMENT_BEGIN(entry.get(), "options", &sub);
        bson_append_document_end(entry.get(), &sub);
        BSON_APPEND_DOCUMENT_BEGIN(entry.get(), "info", &sub);
        BSON_APPEND_BOOL(&sub, "readOnly", false);
        bson_append_document_end(entry.get(), &sub);
        auto d = std::make_shared<stored_doc>();
        d->bytes.assign(entry.data(), entry.data() + entry.size());
        if (f->matches(d->span())) entries.push_back(std::move(d));
    }
    append_cursor(c.reply, "firstBatch", entries, 0, c.ns("$cmd.listCollections"));
}

void end_sessions(call& c) {
    ok(c.reply);
}

// The replica-set fields of standinFault: {stepDown: true, killMember: i, reviveMember: i,
// partitionMember: i, healMember: i}. Returns why one was refused (empty: all done). Killing
// or partitioning the member asked closes this connection too: its reply may be lost.
std::string replset_controls(call& c) {
    using control = std::string (replica_set::*)(int);
    constexpr std::pair<const char*, control> by_member[] = {
        {"killMember", &replica_set::kill},
        {"reviveMember", &replica_set::revive},
        {"partitionMember", &replica_set::partition},
        {"healMember", &replica_set::heal},
    };
    bson_iter_t it;
    const bool step_down = c.field("stepDown", it) && as_flag(it);
    bool any = step_down;
    for (const auto& entry : by_member) any = any || c.field(entry.first, it);
    if (!any) return {};
    if (!c.s.rs) return "stepDown and the *Member controls need a replica set (--replset)";
    if (step_down) {
        if (auto error = c.s.rs->step_down(); !error.empty()) return error;
    }
    for (const auto& [key, fn] : by_member) {
        if (!c.field(key, it)) continue;
        auto member = as_int64(it);
        if (!member) return std::string("'") + key + "' must be a member index";
        const int index = *member < 0 || *member > 1000 ? -1 : static_cast<int>(*member);
        if (auto error = (c.s.rs->*fn)(index); !error.empty()) return error;
    }
    return {};
}

// {standinFault: 1, latencyMs, refuseConnections, dropConnections, failNext, failCode,
//  failMessage, and with --replset stepDown, killMember, reviveMember, partitionMember,
//  healMember}: changes what is given, answers with the current state.
command_result standin_fault(call& c) {
    command_result result;
    bson_iter_t it;
    if (std::string error = replset_controls(c); !error.empty()) {
        fail(c.reply, code_bad_value, error, "BadValue");
        return result;
    }
    int64_t latency = 0, fail_next = 0, fail_code = 8000;
    if (!optional_number(c, "latencyMs", latency) || !optional_number(c, "failNext", fail_next) ||
        !optional_number(c, "failCode", fail_code))
        return result;
    if (c.field("latencyMs", it)) c.s.faults.set_latency_ms(static_cast<int>(latency));
    if (c.field("refuseConnections", it)) c.s.faults.set_refusing(as_flag(it));
    if (c.field("failNext", it)) {
        std::string message = "injected by mongo-standin";
        bson_iter_t m;
        if (c.field("failMessage", m) && BSON_ITER_HOLDS_UTF8(&m)) message = utf8_of(m);
        c.s.faults.fail_next(static_cast<int>(fail_next), static_cast<int32_t>(fail_code),
                             std::move(message));
    }
    result.drop_connections = c.field("dropConnections", it) && as_flag(it);

    auto st = c.s.faults.state();
    BSON_APPEND_INT32(c.reply, "latencyMs", st.latency_ms);
    BSON_APPEND_BOOL(c.reply, "refuseConnections", st.refusing);
    BSON_APPEND_INT32(c.reply, "failNext", st.fail_remaining);
    BSON_APPEND_INT32(c.reply, "failCode", st.fail_code);
    append_utf8(c.reply, "failMessage", st.fail_message);
    BSON_APPEND_BOOL(c.reply, "droppingConnections", result.drop_connections);
    if (c.s.rs) c.s.rs->append_status(c.reply);
    ok(c.reply);
    return result;
}

struct handler {
    std::string_view name;
    void (*run)(call&);
};

constexpr handler handlers[] = {
    {"find", find},
    {"getMore", get_more},
    {"hello", hello},
    {"isMaster", hello},
    {"ismaster", hello},
    {"ping", ping},
    {"insert", insert},
    {"killCursors", kill_cursors},
    {"endSessions", end_sessions},
    {"buildInfo", build_info},
    {"buildinfo", build_info},
    {"delete", remove},
    {"drop", drop},
    {"count", count},
    {"listCollections", list_collections},
};

bool is_handshake(std::string_view name) {
    return name == "hello" || name == "isMaster" || name == "ismaster";
}

// A replica-set member's rules: writes only on the primary (NotWritablePrimary), reads on a
// secondary only when the client allows it with a $readPreference other than primary
// (NotPrimaryNoSecondaryOk). getMore and killCursors follow their cursor; the rest (ping,
// buildInfo, endSessions, ...) runs anywhere. True when the reply was failed.
bool refused_by_member(call& c) {
    const bool write = c.name == "insert" || c.name == "delete" || c.name == "drop";
    const bool read = c.name == "find" || c.name == "count" || c.name == "listCollections";
    if ((!write && !read) || c.s.rs->is_primary(c.s.member)) return false;
    if (write) {
        fail(c.reply, code_not_writable_primary, "not primary", "NotWritablePrimary");
        // From wire version 9 drivers retry a write only when the server labels the error
        // (a retryable write carries txnNumber), as mongod 4.4+ does.
        bson_iter_t txn;
        if (c.field("txnNumber", txn)) {
            bson_t labels;
            BSON_APPEND_ARRAY_BEGIN(c.reply, "errorLabels", &labels);
            BSON_APPEND_UTF8(&labels, "0", "RetryableWriteError");
            bson_append_array_end(c.reply, &labels);
        }
        return true;
    }
    bson_iter_t preference, mode;
    if (c.field("$readPreference", preference) && BSON_ITER_HOLDS_DOCUMENT(&preference)) {
        bson_view doc(subdocument_of(preference));
        if (bson_iter_init_find(&mode, doc.get(), "mode") && BSON_ITER_HOLDS_UTF8(&mode) &&
            utf8_of(mode) != "primary")
            return false;
    }
    fail(c.reply, code_not_primary_no_secondary_ok, "not primary and secondaryOk=false",
         "NotPrimaryNoSecondaryOk");
    return true;
}

}  // namespace

command_result run_command(services& s, std::span<const uint8_t> body, int32_t connection_id,
                           auth_state& auth, bson_t* reply, bool may_wait) {
    bson_view view(body);
    call c{s, view.get(), {}, {}, {}, connection_id, auth, reply};
    if (!bson_iter_init(&c.command, c.body) || !bson_iter_next(&c.command)) {
        fail(reply, code_command_not_found, "empty command document", "CommandNotFound");
        return {};
    }
    c.name = key_of(c.command);
    bson_iter_t db;
    if (c.field("$db", db) && BSON_ITER_HOLDS_UTF8(&db)) c.db = utf8_of(db);

    if (is_handshake(c.name)) {
        command_result result;
        if (s.rs && may_wait) result.wait = awaitable_hello(c);
        if (!result.wait || !result.wait->must_wait) hello(c);
        return result;
    }
    if (c.db.empty()) {
        fail(reply, code_missing_db, "OP_MSG requests require a $db argument", "Location40571");
        return {};
    }
    if (c.name == "saslStart") {
        sasl_start(s.users, auth, c.body, c.db, reply);
        return {};
    }
    if (c.name == "saslContinue") {
        sasl_continue(s.users, auth, c.body, reply);
        return {};
    }
    if (!s.users.empty() && !auth.authenticated) {
        fail_unauthorized(reply, c.name);
        return {};
    }
    if (c.name == "standinFault") return standin_fault(c);
    if (s.rs && refused_by_member(c)) return {};
    if (auto failure = s.faults.take_failure()) {
        fail(reply, failure->code, failure->message);
        return {};
    }
    for (const auto& h : handlers) {
        if (h.name == c.name) {
            h.run(c);
            return {};
        }
    }
    fail(reply, code_command_not_found, "no such command: '" + std::string(c.name) + "'",
         "CommandNotFound");
    return {};
}

}  // namespace standin
