// What the libmongoc stand-in tests share: libmongoc initialised once per executable, and a
// pool (as the server holds one) with a client popped from it for one scope.
#pragma once

#include <mongoc/mongoc.h>

#include <stdexcept>
#include <string>

namespace standin_mongoc {

struct runtime {
    runtime() { mongoc_init(); }
    ~runtime() { mongoc_cleanup(); }
    runtime(const runtime&) = delete;
    runtime& operator=(const runtime&) = delete;
};
inline const runtime init;

// A mongoc_client_pool_t over `uri`, with the error API of the server (version 2).
class pool {
  public:
    explicit pool(const std::string& uri) {
        bson_error_t error;
        mongoc_uri_t* u = mongoc_uri_new_with_error(uri.c_str(), &error);
        if (!u) throw std::runtime_error("bad URI " + uri + ": " + error.message);
        pool_ = mongoc_client_pool_new(u);
        mongoc_uri_destroy(u);
        if (!pool_) throw std::runtime_error("bad URI options: " + uri);
        mongoc_client_pool_set_error_api(pool_, MONGOC_ERROR_API_VERSION_2);
    }
    ~pool() { mongoc_client_pool_destroy(pool_); }
    pool(const pool&) = delete;
    pool& operator=(const pool&) = delete;
    mongoc_client_pool_t* get() { return pool_; }

    // Installs the callbacks that `set` puts in a new set, with `context`; before any pop.
    template <class Set>
    void monitor(Set set, void* context) {
        mongoc_apm_callbacks_t* cb = mongoc_apm_callbacks_new();
        set(cb);
        mongoc_client_pool_set_apm_callbacks(pool_, cb, context);
        mongoc_apm_callbacks_destroy(cb);
    }

  private:
    mongoc_client_pool_t* pool_;
};

// A client popped from a pool for one scope.
class client {
  public:
    explicit client(pool& p) : pool_(p.get()), client_(mongoc_client_pool_pop(p.get())) {}
    ~client() { mongoc_client_pool_push(pool_, client_); }
    client(const client&) = delete;
    client& operator=(const client&) = delete;
    mongoc_client_t* get() { return client_; }

  private:
    mongoc_client_pool_t* pool_;
    mongoc_client_t* client_;
};

}  // namespace standin_mongoc
