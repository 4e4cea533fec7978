// wire: parsing and building MongoDB wire messages. Every length and document is checked
// against the bytes actually received: a malformed message yields an error, never a read
// past the buffer.
#include "wire.hpp"

#include <cstring>
#include <string_view>

namespace standin::wire {
namespace {

int32_t read_i32(const uint8_t* p) {
    uint32_t v = uint32_t(p[0]) | uint32_t(p[1]) << 8 | uint32_t(p[2]) << 16 | uint32_t(p[3]) << 24;
    return static_cast<int32_t>(v);
}

void put_i32(uint8_t* p, int32_t value) {
    auto v = static_cast<uint32_t>(value);
    p[0] = uint8_t(v);
    p[1] = uint8_t(v >> 8);
    p[2] = uint8_t(v >> 16);
    p[3] = uint8_t(v >> 24);
}

// A cursor over the payload that refuses to move past its end.
struct reader {
    std::span<const uint8_t> bytes;
    std::size_t pos = 0;

    std::size_t left() const { return bytes.size() - pos; }

    std::optional<int32_t> i32() {
        if (left() < 4) return std::nullopt;
        int32_t v = read_i32(bytes.data() + pos);
        pos += 4;
        return v;
    }
    std::optional<uint8_t> u8() {
        if (left() < 1) return std::nullopt;
        return bytes[pos++];
    }
    std::optional<std::string_view> cstring() {
        auto* start = bytes.data() + pos;
        auto* nul = static_cast<const uint8_t*>(std::memchr(start, 0, left()));
        if (!nul) return std::nullopt;
        std::string_view s(reinterpret_cast<const char*>(start), std::size_t(nul - start));
        pos += s.size() + 1;
        return s;
    }
    // One BSON document, fully validated; its bytes stay in the payload.
    std::optional<std::span<const uint8_t>> document() {
        if (left() < 5) return std::nullopt;
        int32_t len = read_i32(bytes.data() + pos);
        if (len < 5 || std::size_t(len) > left()) return std::nullopt;
        auto doc = bytes.subspan(pos, std::size_t(len));
        if (!well_formed(doc)) return std::nullopt;
        pos += std::size_t(len);
        return doc;
    }
};

bool is_handshake(std::string_view name) {
    return name == "hello" || name == "isMaster" || name == "ismaster";
}

std::string_view first_key(std::span<const uint8_t> doc) {
    bson_view view(doc);
    bson_iter_t it;
    if (bson_iter_init(&it, view.get()) && bson_iter_next(&it)) return key_of(it);
    return {};
}

// kind-1 section: identifier and the documents that follow it.
struct sequence {
    std::string_view identifier;
    std::vector<std::span<const uint8_t>> documents;
};

void build(std::vector<uint8_t>& out, int32_t request_id, int32_t response_to, int32_t op,
           std::span<const uint8_t> prefix, const bson_t* doc) {
    const std::size_t total = header_size + prefix.size() + doc->len;
    out.resize(total);
    put_i32(out.data(), static_cast<int32_t>(total));
    put_i32(out.data() + 4, request_id);
    put_i32(out.data() + 8, response_to);
    put_i32(out.data() + 12, op);
    std::memcpy(out.data() + header_size, prefix.data(), prefix.size());
    std::memcpy(out.data() + header_size + prefix.size(), bson_get_data(doc), doc->len);
}

}  // namespace

header parse_header(const std::array<uint8_t, header_size>& b) {
    return {read_i32(b.data()), read_i32(b.data() + 4), read_i32(b.data() + 8),
            read_i32(b.data() + 12)};
}

struct parser {
    static parse_result op_query(const header& h, std::span<const uint8_t> payload) {
        reader r{payload};
        auto flags = r.i32();
        auto collection = r.cstring();
        auto skip = r.i32();
        auto limit = r.i32();
        auto query = r.document();
        if (!flags || !collection || !skip || !limit || !query) return {{}, "truncated OP_QUERY"};
        if (r.left() > 0 && !r.document()) return {{}, "bad OP_QUERY field selector"};
        if (r.left() != 0) return {{}, "trailing bytes after OP_QUERY"};
        if (*collection != "admin.$cmd")
            return {{}, "OP_QUERY is only accepted for the handshake on admin.$cmd"};

        // Some drivers wrap the command as {$query: {...}, $readPreference: ...}.
        std::span<const uint8_t> command = *query;
        bson_view query_view(*query);
        bson_iter_t it;
        if (bson_iter_init_find(&it, query_view.get(), "$query") && BSON_ITER_HOLDS_DOCUMENT(&it))
            command = subdocument_of(it);
        if (!is_handshake(first_key(command)))
            return {{}, "OP_QUERY is only accepted for hello/isMaster"};

        request req;
        req.request_id = h.request_id;
        req.legacy = true;
        req.view_ = command;
        return {std::move(req), {}};
    }

    static parse_result op_msg(const header& h, std::span<const uint8_t> payload) {
        reader r{payload};
        auto flags = r.i32();
        if (!flags) return {{}, "truncated OP_MSG"};
        const auto bits = static_cast<uint32_t>(*flags);
        constexpr uint32_t checksum_present = 1u << 0, more_to_come = 1u << 1,
                           exhaust_allowed = 1u << 16;
        // Bits 0-15 are "required": an unknown one must make the message fail.
        if (bits & 0xFFFFu & ~(checksum_present | more_to_come))
            return {{}, "unknown required OP_MSG flag bit"};
        if (bits & checksum_present) {
            // The CRC-32C is not verified (loopback test traffic); it is only skipped.
            if (r.bytes.size() < 4 + 4) return {{}, "OP_MSG checksum missing"};
            r.bytes = r.bytes.first(r.bytes.size() - 4);
        }

        std::optional<std::span<const uint8_t>> body;
        std::vector<sequence> sequences;
        while (r.left() > 0) {
            auto kind = r.u8();
            if (*kind == 0) {
                if (body) return {{}, "OP_MSG with two kind-0 sections"};
                body = r.document();
                if (!body) return {{}, "bad OP_MSG body document"};
            } else if (*kind == 1) {
                const std::size_t start = r.pos;
                auto size = r.i32();
                if (!size || *size < 5 || std::size_t(*size) > r.left() + 4)
                    return {{}, "bad OP_MSG document sequence size"};
                reader seq{r.bytes.first(start + std::size_t(*size)), r.pos};
                auto id = seq.cstring();
                if (!id) return {{}, "bad OP_MSG sequence identifier"};
                sequence s{*id, {}};
                while (seq.left() > 0) {
                    auto doc = seq.document();
                    if (!doc) return {{}, "bad document in OP_MSG sequence"};
                    s.documents.push_back(*doc);
                }
                sequences.push_back(std::move(s));
                r.pos = seq.pos;
            } else {
                return {{}, "unknown OP_MSG section kind"};
            }
        }
        if (!body) return {{}, "OP_MSG without a kind-0 section"};

        request req;
        req.request_id = h.request_id;
        req.more_to_come = (bits & more_to_come) != 0;
        req.exhaust_allowed = (bits & exhaust_allowed) != 0;
        if (sequences.empty()) {
            req.view_ = *body;
            return {std::move(req), {}};
        }
        bson_view body_view(*body);
        bson_doc merged(bson_copy(body_view.get()));
        for (auto& s : sequences) {
            bson_iter_t it;
            std::string id(s.identifier);
            if (bson_iter_init_find(&it, body_view.get(), id.c_str()))
                return {{}, "OP_MSG sequence '" + id + "' repeats a body field"};
            bson_t array;
            bson_append_array_begin(merged.get(), id.c_str(), int(id.size()), &array);
            char key_buf[16];
            for (uint32_t i = 0; i < s.documents.size(); ++i) {
                const char* key = nullptr;
                std::size_t key_len = bson_uint32_to_string(i, &key, key_buf, sizeof key_buf);
                bson_view doc(s.documents[i]);
                bson_append_document(&array, key, int(key_len), doc.get());
            }
            bson_append_array_end(merged.get(), &array);
        }
        req.merged_ = std::move(merged);
        return {std::move(req), {}};
    }
};

parse_result parse_request(const header& h, std::span<const uint8_t> payload) {
    switch (h.op_code) {
        case op_query:
            return parser::op_query(h, payload);
        case op_msg:
            return parser::op_msg(h, payload);
        case op_compressed:
            return {{}, "OP_COMPRESSED was not negotiated"};
        default:
            return {{}, "unknown opcode " + std::to_string(h.op_code)};
    }
}

void build_op_msg(std::vector<uint8_t>& out, int32_t request_id, int32_t response_to,
                  const bson_t* body, bool more_to_come) {
    static constexpr uint8_t prefix[] = {0, 0, 0, 0, /* kind */ 0};
    static constexpr uint8_t streamed[] = {2, 0, 0, 0, /* kind */ 0};  // flag bit 1
    build(out, request_id, response_to, op_msg, more_to_come ? streamed : prefix, body);
}

void build_op_reply(std::vector<uint8_t>& out, int32_t request_id, int32_t response_to,
                    const bson_t* document) {
    // responseFlags 0, cursorID 0 (int64), startingFrom 0, numberReturned 1.
    static constexpr uint8_t prefix[] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                                         0, 0, 0, 0, 0, 0, 1, 0, 0, 0};
    build(out, request_id, response_to, op_reply, prefix, document);
}

}  // namespace standin::wire
