// wire: the MongoDB wire format the stand-in speaks: the 16-byte header, OP_QUERY (only
// for the hello handshake), OP_MSG requests, and the OP_REPLY / OP_MSG replies.
#pragma once

#include <bson/bson.h>

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "bson_util.hpp"

namespace standin::wire {

constexpr int32_t op_reply = 1;
constexpr int32_t op_query = 2004;
constexpr int32_t op_compressed = 2012;
constexpr int32_t op_msg = 2013;

constexpr std::size_t header_size = 16;
// Advertised as maxMessageSizeBytes in hello; anything longer closes the connection.
constexpr int32_t max_message_size = 48'000'000;

struct header {
    int32_t length = 0;
    int32_t request_id = 0;
    int32_t response_to = 0;
    int32_t op_code = 0;
};

header parse_header(const std::array<uint8_t, header_size>& bytes);

// One command, from OP_MSG or from an OP_QUERY handshake. `body()` is either the
// received bytes (no kind-1 sections: the common case, no copy) or a merged copy; it is
// valid while the request and the received payload live.
class request {
  public:
    int32_t request_id = 0;
    bool legacy = false;        // OP_QUERY: answer with OP_REPLY
    bool more_to_come = false;  // OP_MSG moreToCome: the client wants no reply
    // OP_MSG exhaustAllowed: the client takes a stream of replies (moreToCome) to this one
    // request; drivers ask it for the awaitable hello of their streaming monitor.
    bool exhaust_allowed = false;

    std::span<const uint8_t> body() const {
        return merged_ ? std::span<const uint8_t>(merged_->data(), merged_->size()) : view_;
    }

  private:
    friend struct parser;
    std::span<const uint8_t> view_;
    std::optional<bson_doc> merged_;
};

// Either a request or the reason the message is malformed (the connection is closed).
struct parse_result {
    std::optional<request> ok;
    std::string error;
};

// `payload` is the message after its header (header.length - 16 bytes).
parse_result parse_request(const header& h, std::span<const uint8_t> payload);

// Replies: `out` is overwritten with a complete message (header included). `more_to_come`:
// another reply to the same request follows without a new request (an exhaust stream).
void build_op_msg(std::vector<uint8_t>& out, int32_t request_id, int32_t response_to,
                  const bson_t* body, bool more_to_come = false);
void build_op_reply(std::vector<uint8_t>& out, int32_t request_id, int32_t response_to,
                    const bson_t* document);

}  // namespace standin::wire
