// server: the networking of the stand-in: the accept loop, one coroutine per connection
// (read header, read message, run the command, write the reply), the registry that lets
// a fault close every connection, and the --control-stdin line reader. With --replset, one
// acceptor and one registry per member of the set.
#pragma once

#include <atomic>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <istream>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "commands.hpp"

namespace standin {

// Every open connection, so that "drop" can close them all from any thread.
class connection_registry {
  public:
    struct live {
        boost::asio::ip::tcp::socket& socket;
    };
    using entry = std::pair<boost::asio::any_io_executor, std::weak_ptr<live>>;

    uint64_t add(boost::asio::any_io_executor ex, std::weak_ptr<live> conn);
    void remove(uint64_t key);
    // Posts a close to each connection's own executor; returns how many were open.
    std::size_t close_all();
    std::size_t size() const;

  private:
    mutable std::mutex mutex_;
    uint64_t next_ = 0;
    std::unordered_map<uint64_t, entry> entries_;
};

class server {
  public:
    // Connections are spread over `contexts` (one thread each); the acceptors use the first.
    // `acceptors[i]` listens for member i of `svc.rs` (a standalone server has one acceptor
    // and no replica set). `tls`: when set, every connection is TLS (a plain client is
    // closed after the failed handshake). `auth_timeout`: how long a started SASL
    // conversation may wait for its next message before the connection is closed.
    server(std::vector<boost::asio::io_context*> contexts,
           std::vector<boost::asio::ip::tcp::acceptor*> acceptors, services svc,
           std::chrono::milliseconds message_timeout, boost::asio::ssl::context* tls = nullptr,
           std::chrono::milliseconds auth_timeout = std::chrono::seconds(30));

    // Accepts the clients of member `member` (0 for a standalone server).
    boost::asio::awaitable<void> accept_loop(int member = 0);
    // Reads control lines ("latency 50", "refuse on", "drop", "fail 3 11600 msg",
    // "state", and with --replset "rs", "stepdown", "kill I", "revive I", "partition I",
    // "heal I") from stdin and answers each with one "ok ..." or "error ..." line on
    // stdout. End of input stops the process (it never outlives the test that fed it).
    boost::asio::awaitable<void> control_loop(int fd, std::function<void()> stop);

  private:
    // What the control loop does before it answers a line.
    enum class then { answer, drop_all, flush_closes };

    boost::asio::awaitable<void> session(boost::asio::ip::tcp::socket socket, int32_t id,
                                         int member);
    // The message loop, over the plain socket or the TLS stream on top of it.
    template <class Stream>
    boost::asio::awaitable<void> serve(Stream& stream, boost::asio::ip::tcp::socket& socket,
                                       int32_t id, int member);
    std::string apply_control(std::string_view line, then& next);
    std::string replset_control(const std::string& verb, std::istream& in, then& next);
    std::string state_line() const;
    // Closes every connection (of every member) and returns once each context has run the
    // closes.
    boost::asio::awaitable<void> drop_all_and_wait();
    // Returns once each context has run what was posted to it before (e.g. closes).
    boost::asio::awaitable<void> flush_contexts();
    void close_all();
    // A standalone server always serves; a member only while it is up and not partitioned.
    bool serving(int member) const;

    std::vector<boost::asio::io_context*> contexts_;
    std::vector<boost::asio::ip::tcp::acceptor*> acceptors_;
    services svc_;
    std::chrono::milliseconds message_timeout_;  // for the rest of a message once started
    boost::asio::ssl::context* tls_;
    std::chrono::milliseconds auth_timeout_;
    std::vector<std::unique_ptr<connection_registry>> connections_;  // one per member
    std::atomic<int32_t> next_connection_id_{1};
};

}  // namespace standin
