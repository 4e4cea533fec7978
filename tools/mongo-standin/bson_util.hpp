// bson_util: small RAII and lookup helpers over libbson, shared by the stand-in's files.
#pragma once

#include <bson/bson.h>

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace standin {

// An owned bson_t (heap-allocated by libbson); movable, never copied by accident.
class bson_doc {
  public:
    bson_doc() : doc_(bson_new()) {}
    explicit bson_doc(bson_t* adopted) : doc_(adopted) {}
    bson_doc(bson_doc&& o) noexcept : doc_(o.doc_) { o.doc_ = nullptr; }
    bson_doc& operator=(bson_doc&& o) noexcept {
        std::swap(doc_, o.doc_);
        return *this;
    }
    ~bson_doc() {
        if (doc_) bson_destroy(doc_);
    }
    bson_t* get() { return doc_; }
    const bson_t* get() const { return doc_; }
    const uint8_t* data() const { return bson_get_data(doc_); }
    std::size_t size() const { return doc_->len; }

  private:
    bson_t* doc_;
};

// A read-only bson_t over bytes owned elsewhere (a received message, a stored document).
// Not copyable: a static bson_t points into itself, so a copied one would dangle.
// When the bytes are not a document, it views an empty one (valid() is false).
class bson_view {
  public:
    bson_view(const uint8_t* data, std::size_t len) : valid_(bson_init_static(&b_, data, len)) {
        if (!valid_) bson_init(&b_);  // an empty, inline document: nothing to free
    }
    explicit bson_view(std::span<const uint8_t> bytes) : bson_view(bytes.data(), bytes.size()) {}
    bson_view(const bson_view&) = delete;
    bson_view& operator=(const bson_view&) = delete;
    bool valid() const { return valid_; }
    const bson_t* get() const { return &b_; }

  private:
    bson_t b_;
    bool valid_;
};

// The bytes of the embedded document or array under an iterator.
inline std::span<const uint8_t> subdocument_of(const bson_iter_t& it) {
    uint32_t len = 0;
    const uint8_t* data = nullptr;
    if (BSON_ITER_HOLDS_DOCUMENT(&it))
        bson_iter_document(&it, &len, &data);
    else if (BSON_ITER_HOLDS_ARRAY(&it))
        bson_iter_array(&it, &len, &data);
    return {data, len};
}

inline std::string_view key_of(const bson_iter_t& it) {
    return {bson_iter_key(&it), bson_iter_key_len(&it)};
}

inline std::string_view utf8_of(const bson_iter_t& it) {
    uint32_t len = 0;
    const char* s = bson_iter_utf8(&it, &len);
    return {s, len};
}

inline bool is_number(const bson_iter_t& it) {
    auto t = bson_iter_type(&it);
    return t == BSON_TYPE_INT32 || t == BSON_TYPE_INT64 || t == BSON_TYPE_DOUBLE;
}

// A numeric field as int64 (int32, int64 or double), nullopt for any other type.
inline std::optional<int64_t> as_int64(const bson_iter_t& it) {
    if (!is_number(it)) return std::nullopt;
    return bson_iter_as_int64(&it);
}

// Truthiness the way the server reads flags such as singleBatch (bool or number).
inline bool as_flag(const bson_iter_t& it) {
    return bson_iter_as_bool(&it);
}

inline void append_utf8(bson_t* b, std::string_view key, std::string_view value) {
    bson_append_utf8(b, key.data(), static_cast<int>(key.size()), value.data(),
                     static_cast<int>(value.size()));
}

// True when `bytes` is one BSON document whose elements, and the elements of every
// document and array nested in it (at most `max_depth` deep), are all well formed.
// Unlike bson_validate, a nested document with a bad length or terminator is rejected,
// and deep nesting cannot exhaust the stack.
inline bool well_formed(std::span<const uint8_t> bytes, int max_depth = 100) {
    bson_view view(bytes);
    if (!view.valid() || max_depth < 0) return false;
    bson_iter_t it;
    if (!bson_iter_init(&it, view.get())) return false;
    while (bson_iter_next(&it)) {
        if ((BSON_ITER_HOLDS_DOCUMENT(&it) || BSON_ITER_HOLDS_ARRAY(&it)) &&
            !well_formed(subdocument_of(it), max_depth - 1))
            return false;
        if (BSON_ITER_HOLDS_CODEWSCOPE(&it)) {
            uint32_t len = 0, scope_len = 0;
            const uint8_t* scope = nullptr;
            bson_iter_codewscope(&it, &len, &scope_len, &scope);
            if (!well_formed({scope, scope_len}, max_depth - 1)) return false;
        }
    }
    return it.err_off == 0;  // set by libbson when iteration stopped at corrupt bytes
}

}  // namespace standin
