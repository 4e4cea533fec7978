// libmongoc behind a small C++ surface: the client pool, bson_t ownership, deadlines on every
// call, and the translation of driver errors into db_unavailable / db_timeout / db_error.
#include "mongo.hpp"

#include <mongoc/mongoc.h>

#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <mutex>
#include <optional>
#include <string_view>

#include "bson_json.hpp"
#include "log_limiter.hpp"

namespace coroserve {
namespace {

using clock = std::chrono::steady_clock;

// Owns a bson_t that lives on the stack (bson_init) or the heap (bson_new).
struct bson_doc {
    bson_t value = BSON_INITIALIZER;
    bson_doc() = default;
    bson_doc(const bson_doc&) = delete;
    ~bson_doc() { bson_destroy(&value); }
    bson_t* get() { return &value; }
};

// A libmongoc object destroyed by its own function.
template <class T, void (*destroy)(T*)>
struct deleter {
    void operator()(T* p) const { destroy(p); }
};
template <class T, void (*destroy)(T*)>
using owned = std::unique_ptr<T, deleter<T, destroy>>;

// libmongoc's own warnings ("Failed authentication to HOST", TLS errors) come once per
// connection attempt, i.e. once per request while the database refuses us: at most one line
// a second here too, like the router's failure lines. Debug and trace output is dropped.
void log_from_driver(mongoc_log_level_t level, const char* domain, const char* message, void*) {
    if (level > MONGOC_LOG_LEVEL_INFO) return;
    static log_limiter limit;
    auto suppressed = limit.allow();
    if (!suppressed) return;
    std::fprintf(stderr, "coroserve: libmongoc %s %s: %s (%u similar lines suppressed)\n",
                 mongoc_log_level_str(level), domain, message, *suppressed);
}

void init_driver_once() {
    static std::once_flag once;
    std::call_once(once, [] {
        mongoc_log_set_handler(log_from_driver, nullptr);
        mongoc_init();
        std::atexit(mongoc_cleanup);
    });
}

void set_default(mongoc_uri_t* uri, const char* option, std::int32_t value) {
    if (!mongoc_uri_has_option(uri, option)) mongoc_uri_set_option_as_int32(uri, option, value);
}

// Authentication and TLS failures, told apart from an unreachable server. libmongoc reports
// them as a client error (authentication) or inside the server-selection message that
// lists why each server was unsuitable; its messages carry no credentials.
std::optional<db_connect_failed::cause> connect_failure(const bson_error_t& error) {
    const std::string_view what = error.message;
    constexpr std::uint32_t server_authentication_failed = 18;
    if ((error.domain == MONGOC_ERROR_CLIENT && error.code == MONGOC_ERROR_CLIENT_AUTHENTICATE) ||
        (error.domain == MONGOC_ERROR_SERVER && error.code == server_authentication_failed) ||
        what.find("uthentication failed") != std::string_view::npos)
        return db_connect_failed::cause::auth;
    if (what.find("TLS handshake failed") != std::string_view::npos ||
        what.find("certificate") != std::string_view::npos ||
        what.find("SSL") != std::string_view::npos || what.find("TLS") != std::string_view::npos)
        return db_connect_failed::cause::tls;
    return std::nullopt;
}

// A replica-set member that is not (or no longer) what the call needed, e.g. a read still
// sent to a primary that has just stepped down, once the driver's own retry is spent: the
// set is electing, so this is "unavailable" (503, retry later), not a bad answer (502).
bool replica_set_state_change(const bson_error_t& error) {
    if (error.domain != MONGOC_ERROR_SERVER) return false;
    switch (error.code) {
        case 10107:  // NotWritablePrimary
        case 13435:  // NotPrimaryNoSecondaryOk
        case 13436:  // NotPrimaryOrSecondary
        case 189:    // PrimarySteppedDown
        case 11602:  // InterruptedDueToReplStateChange
        case 91:     // ShutdownInProgress
        case 11600:  // InterruptedAtShutdown
            return true;
        default:
            return false;
    }
}

[[noreturn]] void throw_for(const bson_error_t& error, clock::duration elapsed,
                            std::chrono::milliseconds deadline) {
    constexpr std::uint32_t max_time_ms_expired = 50;
    std::string what = error.message;
    if (auto cause = connect_failure(error)) throw db_connect_failed{*cause, what};
    if (error.code == max_time_ms_expired ||
        (error.domain == MONGOC_ERROR_STREAM && elapsed >= deadline))
        throw db_timeout{what};
    if (error.domain == MONGOC_ERROR_SERVER_SELECTION)
        throw db_unavailable{what, db_failure::server_selection};
    if (replica_set_state_change(error)) throw db_unavailable{what, db_failure::not_primary};
    if (error.domain == MONGOC_ERROR_STREAM || error.domain == MONGOC_ERROR_CLIENT)
        throw db_unavailable{what, db_failure::network};
    throw db_error{what};
}

}  // namespace

// Set, on the monitor's thread, once a server suitable for our reads is known.
struct database::discovery {
    explicit discovery(mongoc_read_prefs_t* p) : prefs(p) {}
    static void changed(const mongoc_apm_topology_changed_t* event) {
        auto* self = static_cast<discovery*>(mongoc_apm_topology_changed_get_context(event));
        const auto* now = mongoc_apm_topology_changed_get_new_description(event);
        if (!mongoc_topology_description_has_readable_server(now, self->prefs.get())) return;
        {
            std::lock_guard lock{self->mutex};
            self->found = true;
        }
        self->cv.notify_all();
    }
    owned<mongoc_read_prefs_t, mongoc_read_prefs_destroy> prefs;
    std::mutex mutex;
    std::condition_variable cv;
    bool found = false;
};

// A client popped from the pool once and kept between calls (mongoc_client_pool_pop and
// _push cost 2.5k instructions a call), with an explicit session kept with it: the implicit
// session libmongoc would otherwise start and end around every command costs 4.6k. The
// session has causal consistency off (each request stands alone, as with implicit sessions)
// and is ended on any error (the sessions spec discards a session after a network error) and
// after a long idle spell (the server forgets sessions idle for logicalSessionTimeoutMinutes).
struct database::connection {
    explicit connection(mongoc_client_t* c) : client(c) {}
    connection(const connection&) = delete;
    ~connection() { end_session(); }

    // Started only after a command succeeded: the topology is then known, so starting a
    // session selects no server and cannot block. A server without sessions gets none.
    void start_session() {
        if (session || no_sessions) return;
        mongoc_session_opt_t* opts = mongoc_session_opts_new();
        mongoc_session_opts_set_causal_consistency(opts, false);
        bson_error_t error;
        session = mongoc_client_start_session(client, opts, &error);
        mongoc_session_opts_destroy(opts);
        if (session && !mongoc_client_session_append(session, &session_opts.value, &error))
            end_session();
        no_sessions = session == nullptr;
    }
    void end_session() {
        if (session) mongoc_client_session_destroy(session);
        session = nullptr;
        bson_reinit(&session_opts.value);
    }
    // {sessionId: ...} for the command's opts, or none.
    const bson_t* opts(clock::time_point now) {
        constexpr auto max_idle = std::chrono::minutes{10};
        if (session && now - last_used > max_idle) end_session();
        last_used = now;
        return session ? &session_opts.value : nullptr;
    }
    // After an error: a dirty session goes, and whether sessions work is asked again.
    void failed() {
        end_session();
        no_sessions = false;
    }

    mongoc_client_t* client;
    mongoc_client_session_t* session = nullptr;
    bson_doc session_opts;
    bool no_sessions = false;
    clock::time_point last_used{};
};

// A connection borrowed for the length of one call: a kept one, or a new client from the
// pool (which blocks while maxPoolSize clients are out).
class database::lease {
  public:
    explicit lease(const database& db) : db_(db) {
        {
            std::lock_guard lock{db.idle_mutex_};
            if (!db.idle_.empty()) {
                conn_ = std::move(db.idle_.back());
                db.idle_.pop_back();
            }
        }
        if (!conn_) conn_ = std::make_unique<connection>(mongoc_client_pool_pop(db.pool_));
    }
    ~lease() {
        std::lock_guard lock{db_.idle_mutex_};
        db_.idle_.push_back(std::move(conn_));
    }
    lease(const lease&) = delete;
    connection* operator->() const { return conn_.get(); }

  private:
    const database& db_;
    std::unique_ptr<connection> conn_;
};

database::database(const db_options& options)
    : database_(options.database), query_timeout_(options.query_timeout) {
    init_driver_once();
    bson_error_t error;
    mongoc_uri_t* uri = mongoc_uri_new_with_error(options.uri.c_str(), &error);
    if (!uri) throw std::invalid_argument{std::string{"invalid MongoDB URI: "} + error.message};
    // Deadlines so that no worker ever blocks for long: the URI may still override them.
    auto timeout = static_cast<std::int32_t>(options.query_timeout.count());
    set_default(uri, MONGOC_URI_SOCKETTIMEOUTMS, timeout);
    set_default(uri, MONGOC_URI_CONNECTTIMEOUTMS, std::min<std::int32_t>(timeout, 2000));
    set_default(uri, MONGOC_URI_SERVERSELECTIONTIMEOUTMS,
                static_cast<std::int32_t>(options.server_selection.count()));
    set_default(uri, MONGOC_URI_HEARTBEATFREQUENCYMS, 2000);
    set_default(uri, MONGOC_URI_MAXPOOLSIZE, static_cast<std::int32_t>(options.max_clients));
    if (!mongoc_uri_get_appname(uri)) mongoc_uri_set_appname(uri, "coroserve");
    discovery_ =
        std::make_unique<discovery>(mongoc_read_prefs_copy(mongoc_uri_get_read_prefs_t(uri)));
    pool_ = mongoc_client_pool_new(uri);
    mongoc_uri_destroy(uri);
    if (!pool_) throw std::invalid_argument{"invalid MongoDB URI options"};
    mongoc_client_pool_set_error_api(pool_, MONGOC_ERROR_API_VERSION_2);
    owned<mongoc_apm_callbacks_t, mongoc_apm_callbacks_destroy> events{mongoc_apm_callbacks_new()};
    mongoc_apm_set_topology_changed_cb(events.get(), &discovery::changed);
    mongoc_client_pool_set_apm_callbacks(pool_, events.get(), discovery_.get());
    // The first pop starts the monitor threads; that client is the first one kept.
    idle_.push_back(std::make_unique<connection>(mongoc_client_pool_pop(pool_)));
}

database::~database() {
    for (auto& c : idle_) {
        c->end_session();
        mongoc_client_pool_push(pool_, c->client);
    }
    idle_.clear();
    mongoc_client_pool_destroy(pool_);  // before discovery_: its monitor calls into it
}

bool database::wait_for_servers(std::chrono::milliseconds limit) {
    std::unique_lock lock{discovery_->mutex};
    return discovery_->cv.wait_for(lock, limit, [this] { return discovery_->found; });
}

std::optional<std::string> database::find_one(std::string_view collection,
                                              const std::optional<document_id>& id) const {
    const auto start = clock::now();
    lease conn{*this};

    // {find: collection, filter: {_id: id} or {}, limit: 1, singleBatch: true, maxTimeMS}, run as
    // one command: no collection or cursor objects to build for a single document.
    bson_doc command;
    bson_append_utf8(command.get(), "find", 4, collection.data(),
                     static_cast<int>(collection.size()));
    bson_t filter;
    bson_append_document_begin(command.get(), "filter", 6, &filter);
    if (id) {
        bson_oid_t oid;
        if (id->object_id) {
            bson_oid_init_from_string(&oid, id->value.c_str());
            BSON_APPEND_OID(&filter, "_id", &oid);
        } else {
            bson_append_utf8(&filter, "_id", 3, id->value.data(),
                             static_cast<int>(id->value.size()));
        }
    }
    bson_append_document_end(command.get(), &filter);
    BSON_APPEND_INT32(command.get(), "limit", 1);
    BSON_APPEND_BOOL(command.get(), "singleBatch", true);
    BSON_APPEND_INT64(command.get(), "maxTimeMS", query_timeout_.count());

    bson_doc reply;
    bson_error_t error;
    if (!mongoc_client_read_command_with_opts(conn->client, database_.c_str(), command.get(),
                                              nullptr, conn->opts(start), reply.get(), &error)) {
        conn->failed();
        throw_for(error, clock::now() - start, query_timeout_);
    }
    conn->start_session();

    // reply: {cursor: {firstBatch: [doc], id, ns}, ok: 1}
    bson_iter_t it, batch;
    if (!bson_iter_init(&it, reply.get()) ||
        !bson_iter_find_descendant(&it, "cursor.firstBatch", &batch) ||
        !BSON_ITER_HOLDS_ARRAY(&batch) || !bson_iter_recurse(&batch, &it) || !bson_iter_next(&it))
        return std::nullopt;
    if (!BSON_ITER_HOLDS_DOCUMENT(&it))
        throw db_error{"find answered a batch that is not documents"};
    std::uint32_t len = 0;
    const std::uint8_t* data = nullptr;
    bson_iter_document(&it, &len, &data);
    bson_t doc;
    if (!bson_init_static(&doc, data, len)) throw db_error{"find answered a corrupt document"};
    std::string json;
    // JSON outgrows BSON by a bounded amount per element (an ObjectId's 12 bytes print as 34):
    // the slack keeps a small document to one allocation.
    json.reserve(len + len / 4 + 64);
    try {
        append_relaxed_json(json, doc);
    } catch (const bson_json_error& e) {  // e.g. nested past 200 levels: a bad answer, 502
        throw db_error{e.what()};
    }
    return json;
}

void database::ping() const {
    const auto start = clock::now();
    lease conn{*this};
    bson_doc command, reply;
    BSON_APPEND_INT32(command.get(), "ping", 1);
    bson_error_t error;
    // Sent where reads go (the URI's readPreference, primary by default): ready means "a
    // server suitable for our reads is selectable", e.g. a secondary while a set elects.
    bool ok = mongoc_client_command_simple(conn->client, "admin", command.get(),
                                           mongoc_client_get_read_prefs(conn->client), reply.get(),
                                           &error);
    if (!ok) {
        conn->failed();
        throw_for(error, clock::now() - start, query_timeout_);
    }
}

}  // namespace coroserve
