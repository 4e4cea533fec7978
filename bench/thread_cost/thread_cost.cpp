// Measures what a thread-per-connection server pays per idle connection, for comparison with
// coroserve's coroutine frames (bench/run idle): it accepts N loopback connections, gives each
// a thread blocked in recv() (as a threaded server waiting for the next request would be), and
// prints the growth of its own resident memory per connection.
//   thread_cost [N=2000]
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

namespace {

long rss_kib() {
    std::ifstream status{"/proc/self/status"};
    for (std::string line; std::getline(status, line);)
        if (line.rfind("VmRSS:", 0) == 0) return std::strtol(line.c_str() + 6, nullptr, 10);
    return -1;
}

// What a threaded server does with an idle keep-alive connection: wait for the next request
// with a small buffer on the thread's stack.
void serve(int fd) {
    char request[4096];
    while (::recv(fd, request, sizeof request, 0) > 0) {
    }
    ::close(fd);
}

}  // namespace

int main(int argc, char** argv) {
    const int n = argc > 1 ? std::atoi(argv[1]) : 2000;
    int listener = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
        ::listen(listener, 4096) != 0)
        return std::perror("listen"), 1;
    socklen_t len = sizeof addr;
    ::getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len);

    std::vector<int> clients;
    std::vector<std::thread> threads;
    const long before = rss_kib();
    for (int i = 0; i < n; ++i) {
        int c = ::socket(AF_INET, SOCK_STREAM, 0);
        if (::connect(c, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0)
            return std::perror("connect"), 1;
        clients.push_back(c);
        int s = ::accept(listener, nullptr, nullptr);
        if (s < 0) return std::perror("accept"), 1;
        threads.emplace_back(serve, s);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds{500});
    const long after = rss_kib();
    std::printf(
        "{\"connections\": %d, \"rss_before_kib\": %ld, \"rss_after_kib\": %ld, "
        "\"bytes_per_connection\": %.0f}\n",
        n, before, after, (after - before) * 1024.0 / n);
    for (int c : clients) ::close(c);
    for (auto& t : threads) t.join();
    return 0;
}
