// store: collections, filter matching and cursors. Readers (find, count) share a lock;
// writers (insert, delete, drop) take it alone. Documents are never modified in place.
#include "store.hpp"

#include <cstring>

namespace standin {
namespace {

bool is_integer(bson_type_t t) {
    return t == BSON_TYPE_INT32 || t == BSON_TYPE_INT64;
}

// Equality as MongoDB compares values for a filter: numbers by value across types,
// everything else by type and bytes.
bool values_equal(const bson_iter_t& a, const bson_iter_t& b) {
    if (is_number(a) && is_number(b)) {
        if (is_integer(bson_iter_type(&a)) && is_integer(bson_iter_type(&b)))
            return bson_iter_as_int64(&a) == bson_iter_as_int64(&b);
        return bson_iter_as_double(&a) == bson_iter_as_double(&b);
    }
    if (bson_iter_type(&a) != bson_iter_type(&b)) return false;
    const bson_value_t* x = bson_iter_value(const_cast<bson_iter_t*>(&a));
    const bson_value_t* y = bson_iter_value(const_cast<bson_iter_t*>(&b));
    switch (x->value_type) {
        case BSON_TYPE_UTF8:
            return x->value.v_utf8.len == y->value.v_utf8.len &&
                   std::memcmp(x->value.v_utf8.str, y->value.v_utf8.str, x->value.v_utf8.len) == 0;
        case BSON_TYPE_OID:
            return bson_oid_equal(&x->value.v_oid, &y->value.v_oid);
        case BSON_TYPE_BOOL:
            return x->value.v_bool == y->value.v_bool;
        case BSON_TYPE_NULL:
        case BSON_TYPE_UNDEFINED:
        case BSON_TYPE_MINKEY:
        case BSON_TYPE_MAXKEY:
            return true;
        case BSON_TYPE_DATE_TIME:
            return x->value.v_datetime == y->value.v_datetime;
        case BSON_TYPE_TIMESTAMP:
            return x->value.v_timestamp.timestamp == y->value.v_timestamp.timestamp &&
                   x->value.v_timestamp.increment == y->value.v_timestamp.increment;
        case BSON_TYPE_DOCUMENT:
        case BSON_TYPE_ARRAY:
            return x->value.v_doc.data_len == y->value.v_doc.data_len &&
                   std::memcmp(x->value.v_doc.data, y->value.v_doc.data, x->value.v_doc.data_len) ==
                       0;
        case BSON_TYPE_BINARY:
            return x->value.v_binary.subtype == y->value.v_binary.subtype &&
                   x->value.v_binary.data_len == y->value.v_binary.data_len &&
                   std::memcmp(x->value.v_binary.data, y->value.v_binary.data,
                               x->value.v_binary.data_len) == 0;
        case BSON_TYPE_DECIMAL128:
            return x->value.v_decimal128.high == y->value.v_decimal128.high &&
                   x->value.v_decimal128.low == y->value.v_decimal128.low;
        default:
            return false;  // regex, code, dbpointer, symbol: not supported in filters
    }
}

bool find_field(const bson_t* doc, std::string_view key, bson_iter_t& out) {
    return bson_iter_init(&out, doc) &&
           bson_iter_find_w_len(&out, key.data(), static_cast<int>(key.size()));
}

std::optional<bson_iter_t> id_of(const stored_doc& d) {
    bson_view view(d.span());
    bson_iter_t it;
    if (!find_field(view.get(), "_id", it)) return std::nullopt;
    return it;
}

}  // namespace

doc_ptr make_stored_doc(const bson_t* doc) {
    auto out = std::make_shared<stored_doc>();
    bson_iter_t it;
    if (bson_iter_init_find(&it, doc, "_id")) {
        const uint8_t* data = bson_get_data(doc);
        out->bytes.assign(data, data + doc->len);
        return out;
    }
    bson_doc with_id;
    bson_oid_t oid;
    bson_oid_init(&oid, nullptr);
    BSON_APPEND_OID(with_id.get(), "_id", &oid);
    bson_concat(with_id.get(), doc);
    out->bytes.assign(with_id.data(), with_id.data() + with_id.size());
    return out;
}

std::variant<filter, std::string> filter::parse(std::span<const uint8_t> doc) {
    filter f;
    bson_view view(doc);
    bson_iter_t it;
    if (!bson_iter_init(&it, view.get())) return std::string("filter is not a document");
    while (bson_iter_next(&it)) {
        std::string_view key = key_of(it);
        if (key.empty() || key[0] == '$' || key.find('.') != std::string_view::npos)
            return "the stand-in supports only equality on top-level fields, not '" +
                   std::string(key) + "'";
        if (BSON_ITER_HOLDS_DOCUMENT(&it)) {
            bson_view sub(subdocument_of(it));
            bson_iter_t first;
            if (bson_iter_init(&first, sub.get()) && bson_iter_next(&first) &&
                bson_iter_key(&first)[0] == '$')
                return "the stand-in does not support query operators such as '" +
                       std::string(key_of(first)) + "'";
        }
        f.terms_.push_back(it);
    }
    return f;
}

bool filter::matches(std::span<const uint8_t> doc) const {
    if (terms_.empty()) return true;
    bson_view view(doc);
    for (const auto& stored : terms_) {
        // A local copy: vector elements do not keep the typedef's 128-byte alignment, which
        // libbson's functions declare (clang: -Walign-mismatch).
        const bson_iter_t term = stored;
        bson_iter_t field;
        if (!find_field(view.get(), key_of(term), field)) {
            if (BSON_ITER_HOLDS_NULL(&term)) continue;  // {a: null} matches a missing a
            return false;
        }
        if (!values_equal(term, field)) return false;
    }
    return true;
}

int32_t store::insert(const std::string& ns, std::vector<doc_ptr> docs, bool ordered,
                      std::vector<write_error>& errors) {
    std::unique_lock lock(mutex_);
    auto& coll = collections_[ns];
    int32_t inserted = 0;
    for (std::size_t i = 0; i < docs.size(); ++i) {
        auto id = id_of(*docs[i]);
        bool duplicate = false;
        // Linear: the stand-in holds test and benchmark data, not large collections.
        for (const auto& existing : coll) {
            auto other = id_of(*existing);
            if (id && other && values_equal(*id, *other)) {
                duplicate = true;
                break;
            }
        }
        if (duplicate) {
            errors.push_back(
                {static_cast<int32_t>(i), 11000,
                 "E11000 duplicate key error collection: " + ns + " index: _id_ dup key"});
            if (ordered) break;
            continue;
        }
        coll.push_back(std::move(docs[i]));
        ++inserted;
    }
    return inserted;
}

std::vector<doc_ptr> store::find(const std::string& ns, const filter& f, int64_t skip,
                                 int64_t limit) const {
    std::vector<doc_ptr> out;
    std::shared_lock lock(mutex_);
    auto c = collections_.find(ns);
    if (c == collections_.end()) return out;
    for (const auto& d : c->second) {
        if (!f.matches(d->span())) continue;
        if (skip > 0) {
            --skip;
            continue;
        }
        out.push_back(d);
        if (limit > 0 && static_cast<int64_t>(out.size()) == limit) break;
    }
    return out;
}

int64_t store::count(const std::string& ns, const filter& f, int64_t skip, int64_t limit) const {
    std::shared_lock lock(mutex_);
    auto c = collections_.find(ns);
    if (c == collections_.end()) return 0;
    int64_t n = 0;
    for (const auto& d : c->second) n += f.matches(d->span()) ? 1 : 0;
    n = std::max<int64_t>(0, n - std::max<int64_t>(0, skip));
    return limit > 0 ? std::min(n, limit) : n;
}

int32_t store::remove(const std::string& ns, const filter& f, bool just_one) {
    std::unique_lock lock(mutex_);
    auto c = collections_.find(ns);
    if (c == collections_.end()) return 0;
    int32_t removed = 0;
    std::erase_if(c->second, [&](const doc_ptr& d) {
        if ((just_one && removed == 1) || !f.matches(d->span())) return false;
        ++removed;
        return true;
    });
    return removed;
}

bool store::drop(const std::string& ns) {
    std::unique_lock lock(mutex_);
    return collections_.erase(ns) > 0;
}

std::vector<std::string> store::collections(std::string_view db) const {
    std::vector<std::string> out;
    std::shared_lock lock(mutex_);
    for (const auto& [ns, docs] : collections_)
        if (ns.size() > db.size() && ns.starts_with(db) && ns[db.size()] == '.')
            out.push_back(ns.substr(db.size() + 1));
    return out;
}

std::size_t batch_count(std::span<const doc_ptr> docs, std::size_t from, int64_t batch) {
    std::size_t n = 0, bytes = 0;
    for (std::size_t i = from; i < docs.size(); ++i) {
        if (batch > 0 && static_cast<int64_t>(n) == batch) break;
        bytes += docs[i]->bytes.size();
        if (n > 0 && bytes > max_batch_bytes) break;
        ++n;
    }
    return n;
}

int64_t cursor_table::open(cursor c) {
    std::lock_guard lock(mutex_);
    if (cursors_.size() >= max_cursors) cursors_.erase(cursors_.begin());
    const int64_t id = next_id_++;
    cursors_.emplace(id, std::move(c));
    return id;
}

std::optional<cursor_table::batch_result> cursor_table::next_batch(int64_t id, std::string_view ns,
                                                                   int64_t batch) {
    std::lock_guard lock(mutex_);
    auto c = cursors_.find(id);
    if (c == cursors_.end() || c->second.ns != ns) return std::nullopt;
    auto& cur = c->second;
    std::size_t n = batch_count(cur.docs, cur.next, batch);
    batch_result out;
    out.docs.assign(cur.docs.begin() + static_cast<std::ptrdiff_t>(cur.next),
                    cur.docs.begin() + static_cast<std::ptrdiff_t>(cur.next + n));
    cur.next += n;
    if (cur.next >= cur.docs.size())
        cursors_.erase(c);
    else
        out.id_after = id;
    return out;
}

bool cursor_table::kill(int64_t id, std::string_view ns) {
    std::lock_guard lock(mutex_);
    auto c = cursors_.find(id);
    if (c == cursors_.end() || c->second.ns != ns) return false;
    cursors_.erase(c);
    return true;
}

}  // namespace standin
