// BSON to JSON: our writer against libbson's own bson_as_relaxed_extended_json, type by
// type, on the seed documents, on random documents and on corrupt bytes.
#include "bson_json.hpp"

#include <bson/bson.h>

#include <algorithm>
#include <boost/json.hpp>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <limits>
#include <memory>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#ifndef COROSERVE_SOURCE_DIR
#error "COROSERVE_SOURCE_DIR must name the source tree (for bench/data)"
#endif

namespace {

using coroserve::to_relaxed_json;

// Owns a bson_t (std::unique_ptr<bson_t> trips -Wignored-attributes on its alignment).
class bson_ptr {
  public:
    explicit bson_ptr(bson_t* b) : b_(b) {}
    bson_ptr(bson_ptr&& o) noexcept : b_(std::exchange(o.b_, nullptr)) {}
    bson_ptr& operator=(bson_ptr&& o) noexcept {
        std::swap(b_, o.b_);
        return *this;
    }
    ~bson_ptr() {
        if (b_ != nullptr) bson_destroy(b_);
    }
    bson_t* get() const { return b_; }
    bson_t& operator*() const { return *b_; }
    bson_t* operator->() const { return b_; }

  private:
    bson_t* b_;
};

bson_ptr make() {
    return bson_ptr(bson_new());
}

// Drops the whitespace libbson puts between tokens, leaving string literals alone.
std::string strip_ws(std::string_view s) {
    std::string out;
    bool in_string = false;
    for (std::size_t i = 0; i < s.size(); ++i) {
        const char c = s[i];
        if (in_string) {
            out += c;
            if (c == '\\') {
                out += s[++i];
            } else if (c == '"') {
                in_string = false;
            }
        } else if (c == '"') {
            in_string = true;
            out += c;
        } else if (c != ' ' && c != '\n' && c != '\t' && c != '\r') {
            out += c;
        }
    }
    return out;
}

// libbson's answer, compacted; nullopt where libbson refuses (returns NULL).
std::optional<std::string> libbson_json(const bson_t& doc) {
    std::size_t n = 0;
    char* s = bson_as_relaxed_extended_json(&doc, &n);
    if (s == nullptr) return std::nullopt;
    std::string out = strip_ws(std::string_view(s, n));
    bson_free(s);
    return out;
}

std::optional<std::string> ours(const bson_t& doc) {
    try {
        return to_relaxed_json(doc);
    } catch (const coroserve::bson_json_error&) {
        return std::nullopt;
    }
}

bson_ptr from_json(const std::string& json) {
    bson_error_t err;
    bson_t* b = bson_new_from_json(reinterpret_cast<const std::uint8_t*>(json.data()),
                                   static_cast<ssize_t>(json.size()), &err);
    INFO(err.message);
    REQUIRE(b != nullptr);
    return bson_ptr(b);
}

// The full check for a valid document: same bytes as libbson, valid JSON, and libbson's
// parser reads it back to a document that prints the same (or, where asked, to the document
// itself). libbson's parser refuses some of its own output (dates after 9999), hence
// `parses_back`.
void check(const bson_t& doc, bool round_trips_exactly = false, bool parses_back = true) {
    const auto expected = libbson_json(doc);
    REQUIRE(expected.has_value());
    const std::string got = to_relaxed_json(doc);
    REQUIRE(got == *expected);

    boost::system::error_code ec;
    boost::json::parse(got, ec);
    INFO(got);
    REQUIRE(!ec);

    if (parses_back) {
        const bson_ptr back = from_json(got);
        REQUIRE(to_relaxed_json(*back) == got);
        if (round_trips_exactly) REQUIRE(bson_equal(back.get(), &doc));
    }

    // Appending keeps what is already in the buffer and, once the buffer has grown,
    // reuses its capacity.
    std::string buf = "prefix:";
    coroserve::append_relaxed_json(buf, doc);
    REQUIRE(buf == "prefix:" + got);
    buf.resize(7);
    const auto* data = buf.data();
    coroserve::append_relaxed_json(buf, doc);
    REQUIRE(buf == "prefix:" + got);
    REQUIRE(buf.data() == data);
}

std::string hex(const std::vector<std::uint8_t>& bytes) {
    std::string out;
    for (auto b : bytes) {
        out += "0123456789abcdef"[b >> 4];
        out += "0123456789abcdef"[b & 15];
    }
    return out;
}

std::string read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    REQUIRE(in);
    std::ostringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

}  // namespace

TEST_CASE("empty document, empty array and nesting", "[unit]") {
    auto doc = make();
    check(*doc, true);
    REQUIRE(to_relaxed_json(*doc) == "{}");

    bson_t child, arr;
    BSON_APPEND_DOCUMENT_BEGIN(doc.get(), "d", &child);
    BSON_APPEND_ARRAY_BEGIN(&child, "a", &arr);
    bson_append_document_end(&child, &arr);
    bson_append_document_end(doc.get(), &child);
    BSON_APPEND_ARRAY_BEGIN(doc.get(), "b", &arr);
    BSON_APPEND_INT32(&arr, "0", 1);
    BSON_APPEND_UTF8(&arr, "1", "x");
    bson_append_array_end(doc.get(), &arr);
    REQUIRE(to_relaxed_json(*doc) == R"({"d":{"a":[]},"b":[1,"x"]})");
    check(*doc, true);
}

TEST_CASE("doubles: %.20g digits, .0 on integers, NaN and infinities wrapped", "[unit]") {
    const double values[] = {0.0,
                             -0.0,
                             1.0,
                             -1.0,
                             0.1,
                             22.326464,
                             114.819843,
                             1e15,
                             1e16,
                             1e20,
                             1e21,
                             1e22,
                             123456789012345678.0,
                             12345678901234567890.0,
                             1e-7,
                             1.5e-5,
                             5e-324,
                             std::numeric_limits<double>::denorm_min(),
                             std::numeric_limits<double>::min(),
                             std::numeric_limits<double>::max(),
                             -std::numeric_limits<double>::max(),
                             std::numeric_limits<double>::epsilon()};
    for (double v : values) {
        auto doc = make();
        BSON_APPEND_DOUBLE(doc.get(), "d", v);
        check(*doc, true);
    }
    auto doc = make();
    BSON_APPEND_DOUBLE(doc.get(), "z", -0.0);
    BSON_APPEND_DOUBLE(doc.get(), "i", 3.0);
    BSON_APPEND_DOUBLE(doc.get(), "f", 0.1);
    BSON_APPEND_DOUBLE(doc.get(), "e", 1e21);
    REQUIRE(to_relaxed_json(*doc) == R"({"z":-0.0,"i":3.0,"f":0.10000000000000000555,"e":1e+21})");
    check(*doc, true);

    auto special = make();
    BSON_APPEND_DOUBLE(special.get(), "nan", std::numeric_limits<double>::quiet_NaN());
    BSON_APPEND_DOUBLE(special.get(), "mnan", -std::numeric_limits<double>::quiet_NaN());
    BSON_APPEND_DOUBLE(special.get(), "inf", std::numeric_limits<double>::infinity());
    BSON_APPEND_DOUBLE(special.get(), "minf", -std::numeric_limits<double>::infinity());
    REQUIRE(to_relaxed_json(*special) ==
            R"({"nan":{"$numberDouble":"NaN"},"mnan":{"$numberDouble":"NaN"},)"
            R"("inf":{"$numberDouble":"Infinity"},"minf":{"$numberDouble":"-Infinity"}})");
    check(*special);

    // Random bit patterns and random integers stored as doubles.
    std::mt19937_64 rng(1);
    for (int i = 0; i < 20000; ++i) {
        auto d = make();
        std::uint64_t bits = rng();
        double v;
        std::memcpy(&v, &bits, sizeof v);
        BSON_APPEND_DOUBLE(d.get(), "r", v);
        BSON_APPEND_DOUBLE(d.get(), "n",
                           static_cast<double>(static_cast<std::int64_t>(rng()) >> (rng() % 64)));
        const auto expected = libbson_json(*d);
        REQUIRE(expected.has_value());
        REQUIRE(to_relaxed_json(*d) == *expected);
    }
}

TEST_CASE("doubles between 1 and 1e15 (the fast path) round as glibc's %.20g", "[unit]") {
    std::mt19937_64 rng(8);
    auto same_as_libbson = [](double v) {
        auto d = make();
        BSON_APPEND_DOUBLE(d.get(), "d", v);
        INFO(v);
        REQUIRE(to_relaxed_json(*d) == libbson_json(*d));
    };
    for (int i = 0; i < 20000; ++i) {
        // Any mantissa at any scale in range; short decimals; near powers of ten.
        same_as_libbson(
            std::ldexp(static_cast<double>(rng() >> 11), -static_cast<int>(rng() % 53)));
        same_as_libbson(-static_cast<double>(rng() % 100000000) /
                        std::pow(10.0, static_cast<double>(rng() % 8)));
        same_as_libbson(std::nextafter(std::pow(10.0, static_cast<double>(rng() % 16)),
                                       (rng() & 1) != 0 ? 0.0 : 1e300));
    }
    // Exact ties at the 21st digit: d integer digits and 21 - d binary (so decimal) places
    // ending in 5; glibc rounds them half to even.
    for (int d = 1; d <= 15; ++d) {
        const int places = 21 - d;
        if (d + places > 21 || places > 52) continue;
        for (int i = 0; i < 200; ++i) {
            const double int_part = std::floor(std::pow(10.0, d - 1) * (1 + (rng() % 9)));
            const double frac =
                std::ldexp(static_cast<double>(rng() % (1u << std::min(places, 20)) | 1),
                           -std::min(places, 20));
            if (int_part + frac - int_part != frac) continue;  // not exact at this size
            same_as_libbson(int_part + frac);
        }
    }
    same_as_libbson(123456789012345.015625);  // ...01562|5: ties to even, down
    same_as_libbson(123456789012345.046875);  // ...04687|5: up
    same_as_libbson(999999999999999.9);
    same_as_libbson(99999999999999.99);
}

TEST_CASE("int32 and int64 are plain numbers", "[unit]") {
    auto doc = make();
    BSON_APPEND_INT32(doc.get(), "a", 0);
    BSON_APPEND_INT32(doc.get(), "b", std::numeric_limits<std::int32_t>::min());
    BSON_APPEND_INT32(doc.get(), "c", std::numeric_limits<std::int32_t>::max());
    BSON_APPEND_INT64(doc.get(), "d", std::numeric_limits<std::int64_t>::min());
    BSON_APPEND_INT64(doc.get(), "e", std::numeric_limits<std::int64_t>::max());
    BSON_APPEND_INT64(doc.get(), "f", 5);
    REQUIRE(to_relaxed_json(*doc) ==
            R"({"a":0,"b":-2147483648,"c":2147483647,"d":-9223372036854775808,)"
            R"("e":9223372036854775807,"f":5})");
    check(*doc);  // int64 5 comes back as int32, so not an exact round trip
}

TEST_CASE("strings: escapes, control characters, UTF-8", "[unit]") {
    std::string ctl;
    for (int c = 0; c < 0x20; ++c) ctl += static_cast<char>(c);
    ctl += "\x7f\"\\/";
    auto doc = make();
    bson_append_utf8(doc.get(), "ctl", -1, ctl.data(), static_cast<int>(ctl.size()));
    REQUIRE(to_relaxed_json(*doc) ==
            R"({"ctl":"\u0000\u0001\u0002\u0003\u0004\u0005\u0006\u0007\b\t\n\u000b\f\r)"
            R"(\u000e\u000f\u0010\u0011\u0012\u0013\u0014\u0015\u0016\u0017\u0018\u0019)"
            R"(\u001a\u001b\u001c\u001d\u001e\u001f)"
            "\x7f"
            R"(\"\\/"})");
    check(*doc, true);

    auto utf = make();
    const char* text =
        "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\xe2\x80\xa8\xe2\x80\xa9\xef\xbf\xbf"
        "\xed\x9f\xbf\xee\x80\x80\xf4\x8f\xbf\xbf\xc2\x80";
    BSON_APPEND_UTF8(utf.get(), "k\"e\ny\\\xc3\xa9", text);
    REQUIRE(to_relaxed_json(*utf) ==
            std::string(R"({"k\"e\ny\\)") + "\xc3\xa9" + R"(":")" + text + "\"}");
    check(*utf, true);
    auto empty = make();
    BSON_APPEND_UTF8(empty.get(), "", "");
    REQUIRE(to_relaxed_json(*empty) == R"({"":""})");
    check(*empty, true);
}

TEST_CASE("invalid UTF-8 is refused, as libbson refuses it", "[unit]") {
    const std::string bad[] = {"\xff",
                               "a\x80",
                               "\xc0\x80",
                               "\xc1\xbf",
                               "\xe0\x80\xaf",
                               "\xed\xa0\x80",
                               "\xed\xbf\xbf",
                               "\xf4\x90\x80\x80",
                               "\xf5\x80\x80\x80",
                               "\xf8\x88\x80\x80\x80",
                               "a\xe2\x82",
                               "\xe2\x82",
                               "\xf0\x9f\x98",
                               "\xc3"};
    for (const auto& s : bad) {
        auto value = make();
        bson_append_utf8(value.get(), "v", -1, s.data(), static_cast<int>(s.size()));
        REQUIRE_FALSE(libbson_json(*value).has_value());
        REQUIRE_THROWS_AS(to_relaxed_json(*value), coroserve::bson_json_error);

        auto key = make();
        bson_append_int32(key.get(), s.c_str(), -1, 1);
        REQUIRE_FALSE(libbson_json(*key).has_value());
        REQUIRE_THROWS_AS(to_relaxed_json(*key), coroserve::bson_json_error);
    }
    // All one- and two-byte sequences and every seventh three-byte one, against libbson.
    std::uint8_t buf[3];
    for (std::uint32_t v = 0x80; v < (1u << 24); v += (v < 0x10000 ? 1 : 7)) {
        const int n = v < 0x100 ? 1 : v < 0x10000 ? 2 : 3;
        for (int i = 0; i < n; ++i) buf[i] = static_cast<std::uint8_t>(v >> (8 * (n - 1 - i)));
        if (buf[0] < 0x80) continue;
        bson_t doc;
        bson_init(&doc);
        bson_append_utf8(&doc, "v", 1, reinterpret_cast<const char*>(buf), n);
        const auto expected = libbson_json(doc);
        const auto got = ours(doc);
        INFO("bytes " << v);
        REQUIRE(got == expected);
        bson_destroy(&doc);
    }
}

TEST_CASE("binary: every subtype, base64 with padding", "[unit]") {
    const std::uint8_t bytes[] = {0, 1, 2, 3, 250, 251, 252, 253, 254, 255, 0x3e, 0x3f};
    auto doc = make();
    const int subtypes[] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0x7f, 0x80, 0xfe, 0xff};
    for (int st : subtypes) {
        for (std::uint32_t n = 0; n <= sizeof bytes; ++n) {
            const std::string key = std::to_string(st) + "_" + std::to_string(n);
            bson_append_binary(doc.get(), key.c_str(), -1, static_cast<bson_subtype_t>(st), bytes,
                               n);
        }
    }
    check(*doc, true);
    auto one = make();
    bson_append_binary(one.get(), "b", -1, BSON_SUBTYPE_UUID, bytes, 4);
    REQUIRE(to_relaxed_json(*one) == R"({"b":{"$binary":{"base64":"AAECAw==","subType":"04"}}})");
    auto old = make();
    bson_append_binary(old.get(), "b", -1, BSON_SUBTYPE_BINARY_DEPRECATED, bytes, 2);
    REQUIRE(to_relaxed_json(*old) == R"({"b":{"$binary":{"base64":"AAE=","subType":"02"}}})");
}

TEST_CASE("dates: ISO-8601 from the epoch on, $numberLong before it", "[unit]") {
    const std::int64_t dates[] = {0,
                                  -1,
                                  1,
                                  999,
                                  1000,
                                  1500,
                                  951782400000,     // 2000-02-29
                                  951868800000,     // 2000-03-01
                                  4107542400000,    // 2100-03-01
                                  253402300799999,  // 9999-12-31T23:59:59.999
                                  253402300800000,  // 10000-01-01
                                  -62135596800000,
                                  std::numeric_limits<std::int64_t>::max(),
                                  std::numeric_limits<std::int64_t>::min()};
    for (auto ms : dates) {
        auto doc = make();
        BSON_APPEND_DATE_TIME(doc.get(), "t", ms);
        check(*doc, true, ms <= 253402300799999);
    }
    auto doc = make();
    BSON_APPEND_DATE_TIME(doc.get(), "a", 0);
    BSON_APPEND_DATE_TIME(doc.get(), "b", 1400000000010);
    BSON_APPEND_DATE_TIME(doc.get(), "c", -1);
    BSON_APPEND_DATE_TIME(doc.get(), "d", 253402300800000);
    REQUIRE(to_relaxed_json(*doc) ==
            R"({"a":{"$date":"1970-01-01T00:00:00Z"},"b":{"$date":"2014-05-13T16:53:20.010Z"},)"
            R"("c":{"$date":{"$numberLong":"-1"}},"d":{"$date":"10000-01-01T00:00:00Z"}})");

    std::mt19937_64 rng(2);
    for (int i = 0; i < 20000; ++i) {
        auto d = make();
        const auto ms = static_cast<std::int64_t>(rng()) >> (rng() % 64);
        BSON_APPEND_DATE_TIME(d.get(), "t", ms);
        REQUIRE(to_relaxed_json(*d) == libbson_json(*d));
    }
}

TEST_CASE("regex: pattern escaped, options filtered and sorted", "[unit]") {
    std::string all;
    for (int c = 1; c < 256; ++c) all += static_cast<char>(c);
    auto doc = make();
    BSON_APPEND_REGEX(doc.get(), "a", "a.*b", "xsmli");
    BSON_APPEND_REGEX(doc.get(), "b", "\"q\\/\n", "zyxuiim");
    BSON_APPEND_REGEX(doc.get(), "c", "", "");
    BSON_APPEND_REGEX(doc.get(), "d", "x", all.c_str());
    REQUIRE(to_relaxed_json(*doc) ==
            R"({"a":{"$regularExpression":{"pattern":"a.*b","options":"ilmsx"}},)"
            R"("b":{"$regularExpression":{"pattern":"\"q\\/\n","options":"imux"}},)"
            R"("c":{"$regularExpression":{"pattern":"","options":""}},)"
            R"("d":{"$regularExpression":{"pattern":"x","options":"ilmsux"}}})");
    check(*doc);

    auto bad = make();
    BSON_APPEND_REGEX(bad.get(), "r", "p\xff", "i");
    REQUIRE_FALSE(libbson_json(*bad).has_value());
    REQUIRE_THROWS_AS(to_relaxed_json(*bad), coroserve::bson_json_error);
}

TEST_CASE("the other types: oid, bool, null, undefined, code, symbol, dbpointer, ...", "[unit]") {
    bson_oid_t oid;
    bson_oid_init_from_string(&oid, "5377cba55f41d42bc973d506");
    auto scope = make();
    BSON_APPEND_INT32(scope.get(), "x", 1);
    auto empty = make();
    bson_decimal128_t dec;
    auto doc = make();
    BSON_APPEND_OID(doc.get(), "oid", &oid);
    BSON_APPEND_BOOL(doc.get(), "t", true);
    BSON_APPEND_BOOL(doc.get(), "f", false);
    BSON_APPEND_NULL(doc.get(), "n");
    BSON_APPEND_UNDEFINED(doc.get(), "u");
    BSON_APPEND_DBPOINTER(doc.get(), "dbp", "coll\"x", &oid);
    BSON_APPEND_CODE(doc.get(), "code", "function(){return \"x\";}");
    BSON_APPEND_SYMBOL(doc.get(), "sym", "sy\nm");
    BSON_APPEND_CODE_WITH_SCOPE(doc.get(), "cws", "f()", scope.get());
    BSON_APPEND_CODE_WITH_SCOPE(doc.get(), "cwse", "g()", empty.get());
    BSON_APPEND_TIMESTAMP(doc.get(), "ts", 4294967295u, 7);
    BSON_APPEND_TIMESTAMP(doc.get(), "ts0", 0, 0);
    BSON_APPEND_MINKEY(doc.get(), "min");
    BSON_APPEND_MAXKEY(doc.get(), "max");
    bson_decimal128_from_string("1.2345E+10", &dec);
    BSON_APPEND_DECIMAL128(doc.get(), "dec", &dec);
    bson_decimal128_from_string("-0.00", &dec);
    BSON_APPEND_DECIMAL128(doc.get(), "dec2", &dec);
    bson_decimal128_from_string("NaN", &dec);
    BSON_APPEND_DECIMAL128(doc.get(), "dec3", &dec);
    bson_decimal128_from_string("-Infinity", &dec);
    BSON_APPEND_DECIMAL128(doc.get(), "dec4", &dec);
    REQUIRE(to_relaxed_json(*doc) ==
            R"({"oid":{"$oid":"5377cba55f41d42bc973d506"},"t":true,"f":false,"n":null,)"
            R"("u":{"$undefined":true},)"
            R"("dbp":{"$dbPointer":{"$ref":"coll\"x","$id":{"$oid":"5377cba55f41d42bc973d506"}}},)"
            R"~("code":{"$code":"function(){return \"x\";}"},"sym":{"$symbol":"sy\nm"},)~"
            R"~("cws":{"$code":"f()","$scope":{"x":1}},"cwse":{"$code":"g()","$scope":{}},)~"
            R"("ts":{"$timestamp":{"t":4294967295,"i":7}},"ts0":{"$timestamp":{"t":0,"i":0}},)"
            R"("min":{"$minKey":1},"max":{"$maxKey":1},"dec":{"$numberDecimal":"1.2345E+10"},)"
            R"("dec2":{"$numberDecimal":"-0.00"},"dec3":{"$numberDecimal":"NaN"},)"
            R"("dec4":{"$numberDecimal":"-Infinity"}})");
    check(*doc, true);

    auto zero = make();
    BSON_APPEND_DBPOINTER(zero.get(), "p", "a", &oid);
    // Put a NUL inside the collection name: libbson prints it up to there.
    auto* bytes = bson_get_data(zero.get());
    std::vector<std::uint8_t> raw(bytes, bytes + zero->len);
    raw.insert(raw.end() - 1, {0x0c, 'q', 0, 4, 0, 0, 0, 'a', 0, 'b', 0});
    raw.insert(raw.end() - 1, std::begin(oid.bytes), std::end(oid.bytes));
    raw[0] = static_cast<std::uint8_t>(raw.size());
    bson_t view;
    REQUIRE(bson_init_static(&view, raw.data(), raw.size()));
    REQUIRE(to_relaxed_json(view) == libbson_json(view));
    REQUIRE(to_relaxed_json(view).find(R"("$ref":"a","$id")") != std::string::npos);

    std::mt19937_64 rng(6);
    for (int i = 0; i < 20000; ++i) {
        auto d = make();
        bson_decimal128_t dec{rng(), rng()};
        BSON_APPEND_DECIMAL128(d.get(), "d", &dec);
        REQUIRE(to_relaxed_json(*d) == libbson_json(*d));
    }
}

namespace {
bson_ptr nest(int depth, bool arrays) {
    auto b = make();
    BSON_APPEND_INT32(b.get(), "0", 7);
    for (int i = 0; i < depth; ++i) {
        auto outer = make();
        if (arrays) {
            BSON_APPEND_ARRAY(outer.get(), "0", b.get());
        } else {
            BSON_APPEND_DOCUMENT(outer.get(), "0", b.get());
        }
        b = std::move(outer);
    }
    return b;
}
}  // namespace

TEST_CASE("nesting past 200 levels is cut as libbson cuts it", "[unit]") {
    for (int depth : {1, 100, 199, 200, 201, 202, 1000}) {
        for (bool arrays : {false, true}) {
            auto doc = nest(depth, arrays);
            const auto expected = libbson_json(*doc);
            REQUIRE(expected.has_value());
            REQUIRE(to_relaxed_json(*doc) == *expected);
            REQUIRE((to_relaxed_json(*doc).find("{...}") != std::string::npos) == (depth > 200));
        }
    }
    // A code-with-scope scope starts counting again from zero.
    for (int depth : {199, 200, 201}) {
        auto scope = nest(depth, false);
        auto doc = make();
        BSON_APPEND_CODE_WITH_SCOPE(doc.get(), "c", "f", scope.get());
        auto outer = nest(150, false);
        auto top = make();
        BSON_APPEND_DOCUMENT(top.get(), "x", outer.get());
        BSON_APPEND_DOCUMENT(top.get(), "y", doc.get());
        REQUIRE(to_relaxed_json(*top) == libbson_json(*top));
    }
}

TEST_CASE("scopes nested in scopes: like libbson up to a bound, then refused", "[unit]") {
    auto nested_scopes = [](int levels) {
        auto doc = make();
        BSON_APPEND_INT32(doc.get(), "x", 1);
        for (int i = 0; i < levels; ++i) {
            auto outer = make();
            BSON_APPEND_CODE_WITH_SCOPE(outer.get(), "c", "f()", doc.get());
            doc = std::move(outer);
        }
        return doc;
    };
    auto ok = nested_scopes(300);
    REQUIRE(to_relaxed_json(*ok) == libbson_json(*ok));
    // libbson recurses without bound here; we stop at 1000 levels rather than risk the stack.
    auto deep = nested_scopes(1200);
    REQUIRE_THROWS_AS(to_relaxed_json(*deep), coroserve::bson_json_error);
}

TEST_CASE("the two seed documents", "[unit]") {
    for (const char* name : {"small_doc.json", "big_doc.json"}) {
        const std::string json =
            read_file(std::string(COROSERVE_SOURCE_DIR) + "/bench/data/" + name);
        auto doc = from_json(json);
        INFO(name);
        check(*doc, true);
        // A caller's reserve() is used, not reallocated, when it holds the output (the big
        // document's compact JSON is shorter than its BSON, the small one's is not).
        std::string reserved;
        reserved.reserve(std::string_view(name) == "big_doc.json" ? doc->len + doc->len / 4
                                                                  : doc->len * 2);
        const char* data = reserved.data();
        coroserve::append_relaxed_json(reserved, *doc);
        REQUIRE(reserved.data() == data);
    }
    const std::string small =
        read_file(std::string(COROSERVE_SOURCE_DIR) + "/bench/data/small_doc.json");
    REQUIRE(to_relaxed_json(*from_json(small)) ==
            R"({"_id":{"$oid":"537416b501d53a77bb94135c"},"canonicalUrl":"http://foo.com"})");
}

namespace {

// Random documents with every type, strings from every UTF-8 range and control characters.
class generator {
  public:
    explicit generator(std::uint64_t seed) : rng_(seed) {}

    std::string text() {
        std::string s;
        const int n = pick(0, 12);
        for (int i = 0; i < n; ++i) {
            std::uint32_t cp;
            switch (pick(0, 7)) {
                case 0:
                    cp = static_cast<std::uint32_t>(pick(0, 0x1f));
                    break;
                case 1:
                    cp = "\"\\/\x7f"[pick(0, 3)];
                    break;
                case 2:
                    cp = static_cast<std::uint32_t>(pick(0x80, 0x7ff));
                    break;
                case 3:
                    cp = static_cast<std::uint32_t>(pick(0x800, 0xd7ff));
                    break;
                case 4:
                    cp = static_cast<std::uint32_t>(pick(0xe000, 0xffff));
                    break;
                case 5:
                    cp = static_cast<std::uint32_t>(pick(0x10000, 0x10ffff));
                    break;
                default:
                    cp = static_cast<std::uint32_t>(pick(0x20, 0x7e));
                    break;
            }
            append_utf8(s, cp);
        }
        return s;
    }

    void fill(bson_t* doc, int depth, bool array) {
        const int n = pick(0, depth > 3 ? 2 : 8);
        for (int i = 0; i < n; ++i) {
            std::string key = array ? std::to_string(i) : text();
            // bson_append_* takes keys as C strings.
            key.erase(std::remove(key.begin(), key.end(), '\0'), key.end());
            value(doc, key, depth);
        }
    }

  private:
    int pick(int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng_); }

    static void append_utf8(std::string& s, std::uint32_t cp) {
        if (cp < 0x80) {
            s += static_cast<char>(cp);
        } else if (cp < 0x800) {
            s += static_cast<char>(0xc0 | cp >> 6);
            s += static_cast<char>(0x80 | (cp & 0x3f));
        } else if (cp < 0x10000) {
            s += static_cast<char>(0xe0 | cp >> 12);
            s += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
            s += static_cast<char>(0x80 | (cp & 0x3f));
        } else {
            s += static_cast<char>(0xf0 | cp >> 18);
            s += static_cast<char>(0x80 | ((cp >> 12) & 0x3f));
            s += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
            s += static_cast<char>(0x80 | (cp & 0x3f));
        }
    }

    void value(bson_t* doc, const std::string& key, int depth) {
        const char* k = key.c_str();
        const int type = pick(0, depth > 4 ? 17 : 20);
        bson_oid_t oid;
        for (auto& b : oid.bytes) b = static_cast<std::uint8_t>(pick(0, 255));
        std::string s = text();
        switch (type) {
            case 0: {
                std::uint64_t bits = rng_();
                double d;
                std::memcpy(&d, &bits, sizeof d);
                BSON_APPEND_DOUBLE(doc, k, pick(0, 1) ? d : pick(-1000, 1000) / 8.0);
                break;
            }
            case 1:
                bson_append_utf8(doc, k, -1, s.data(), static_cast<int>(s.size()));
                break;
            case 2: {
                std::vector<std::uint8_t> bytes(static_cast<std::size_t>(pick(0, 20)));
                for (auto& b : bytes) b = static_cast<std::uint8_t>(pick(0, 255));
                bson_append_binary(doc, k, -1, static_cast<bson_subtype_t>(pick(0, 255)),
                                   bytes.data(), static_cast<std::uint32_t>(bytes.size()));
                break;
            }
            case 3:
                BSON_APPEND_UNDEFINED(doc, k);
                break;
            case 4:
                BSON_APPEND_OID(doc, k, &oid);
                break;
            case 5:
                BSON_APPEND_BOOL(doc, k, pick(0, 1) == 1);
                break;
            case 6:
                // Up to 9999-12-31: libbson cannot parse back later dates it prints.
                BSON_APPEND_DATE_TIME(
                    doc, k, (static_cast<std::int64_t>(rng_()) >> pick(0, 63)) % 253402300800000);
                break;
            case 7:
                BSON_APPEND_NULL(doc, k);
                break;
            case 8: {
                std::string opts = "imxslu";
                std::shuffle(opts.begin(), opts.end(), rng_);
                opts.resize(static_cast<std::size_t>(pick(0, 6)));
                s.erase(std::remove(s.begin(), s.end(), '\0'), s.end());
                BSON_APPEND_REGEX(doc, k, s.c_str(), opts.c_str());
                break;
            }
            case 9:
                s.erase(std::remove(s.begin(), s.end(), '\0'), s.end());
                BSON_APPEND_DBPOINTER(doc, k, s.c_str(), &oid);
                break;
            case 10:
                bson_append_code(
                    doc, k, -1,
                    (s.erase(std::remove(s.begin(), s.end(), '\0'), s.end()), s.c_str()));
                break;
            case 11:
                bson_append_symbol(doc, k, -1, s.data(), static_cast<int>(s.size()));
                break;
            case 12:
                BSON_APPEND_INT32(doc, k, static_cast<std::int32_t>(rng_()));
                break;
            case 13:
                BSON_APPEND_TIMESTAMP(doc, k, static_cast<std::uint32_t>(rng_()),
                                      static_cast<std::uint32_t>(rng_()));
                break;
            case 14:
                BSON_APPEND_INT64(doc, k, static_cast<std::int64_t>(rng_()) >> pick(0, 63));
                break;
            case 15: {
                // From text, so that it parses back to the same bits (random bits are
                // checked in the decimal128 test).
                std::string digits = std::to_string(rng_()) + std::to_string(rng_());
                digits.resize(static_cast<std::size_t>(pick(1, 34)));
                const char* specials[] = {"NaN", "Infinity", "-Infinity", "-0"};
                const std::string text = pick(0, 9) == 0 ? specials[pick(0, 3)]
                                                         : (pick(0, 1) ? "-" : "") + digits + "E" +
                                                               std::to_string(pick(-6100, 6100));
                bson_decimal128_t dec;
                REQUIRE(bson_decimal128_from_string(text.c_str(), &dec));
                BSON_APPEND_DECIMAL128(doc, k, &dec);
                break;
            }
            case 16:
                BSON_APPEND_MINKEY(doc, k);
                break;
            case 17:
                BSON_APPEND_MAXKEY(doc, k);
                break;
            case 18:
            case 19: {
                bson_t child;
                if (type == 18) {
                    BSON_APPEND_DOCUMENT_BEGIN(doc, k, &child);
                    fill(&child, depth + 1, false);
                    bson_append_document_end(doc, &child);
                } else {
                    BSON_APPEND_ARRAY_BEGIN(doc, k, &child);
                    fill(&child, depth + 1, true);
                    bson_append_array_end(doc, &child);
                }
                break;
            }
            default: {
                auto scope = make();
                fill(scope.get(), depth + 1, false);
                s.erase(std::remove(s.begin(), s.end(), '\0'), s.end());
                BSON_APPEND_CODE_WITH_SCOPE(doc, k, s.c_str(), scope.get());
                break;
            }
        }
    }

    std::mt19937_64 rng_;
};

}  // namespace

TEST_CASE("random documents with every type match libbson", "[unit]") {
    generator gen(3);
    int unparsed = 0;
    for (int i = 0; i < 3000; ++i) {
        auto doc = make();
        gen.fill(doc.get(), 0, false);
        const auto expected = libbson_json(*doc);
        REQUIRE(expected.has_value());
        const std::string got = to_relaxed_json(*doc);
        REQUIRE(got == *expected);
        boost::system::error_code ec;
        boost::json::parse(got, ec);
        INFO(got);
        REQUIRE(!ec);
        // JSON -> BSON -> JSON is a fixed point, where libbson's parser copes: it fails on
        // some {"$code": ...} inside arrays and writes array keys it leaves uninitialised
        // for $dbPointer and $code inside arrays.
        if (got.find("$dbPointer") != std::string::npos) continue;
        if (got.find("$code") != std::string::npos) continue;
        bson_error_t err;
        bson_t* back = bson_new_from_json(reinterpret_cast<const std::uint8_t*>(got.data()),
                                          static_cast<ssize_t>(got.size()), &err);
        if (back == nullptr) {
            ++unparsed;
            continue;
        }
        const std::string again = to_relaxed_json(*back);
        bson_destroy(back);
        REQUIRE(again == got);
    }
    INFO(unparsed << " of 3000 not parsed back by libbson");
    CHECK(unparsed < 1000);
}

namespace {

// A second opinion on corruption, from libbson's iterator: bson_validate() alone misses
// nested documents without their final NUL and everything inside code-with-scope scopes.
bool valid_deep(const bson_t& doc);

bool walk_valid(bson_iter_t& it) {
    while (bson_iter_next(&it)) {
        if (BSON_ITER_HOLDS_DOCUMENT(&it) || BSON_ITER_HOLDS_ARRAY(&it)) {
            std::uint32_t len = 0;
            const std::uint8_t* data = nullptr;
            if (BSON_ITER_HOLDS_DOCUMENT(&it)) {
                bson_iter_document(&it, &len, &data);
            } else {
                bson_iter_array(&it, &len, &data);
            }
            bson_t child;
            if (data == nullptr || !bson_init_static(&child, data, len)) return false;
            bson_iter_t sub;
            if (!bson_iter_init(&sub, &child) || !walk_valid(sub)) return false;
        } else if (BSON_ITER_HOLDS_CODEWSCOPE(&it)) {
            std::uint32_t code_len = 0, scope_len = 0;
            const std::uint8_t* scope_data = nullptr;
            bson_iter_codewscope(&it, &code_len, &scope_len, &scope_data);
            bson_t scope;
            if (!bson_init_static(&scope, scope_data, scope_len) || !valid_deep(scope)) {
                return false;
            }
        }
    }
    return it.err_off == 0;  // bson_iter_next stopped at the end, not at an error
}

bool valid_deep(const bson_t& doc) {
    if (!bson_validate(&doc, BSON_VALIDATE_NONE, nullptr)) return false;
    bson_iter_t it;
    return bson_iter_init(&it, &doc) && walk_valid(it);
}

}  // namespace

TEST_CASE("corrupt BSON: refused where libbson refuses it or prints part of it; no crash",
          "[unit]") {
    generator gen(4);
    std::mt19937_64 rng(5);
    auto pick = [&](std::size_t lo, std::size_t hi) {
        return std::uniform_int_distribution<std::size_t>(lo, hi)(rng);
    };
    int refused = 0, compared = 0, libbson_partial = 0;
    // COROSERVE_FUZZ_ITERATIONS=1000000 for a longer run.
    const char* env = std::getenv("COROSERVE_FUZZ_ITERATIONS");
    const int iterations = env != nullptr ? std::atoi(env) : 20000;
    for (int i = 0; i < iterations; ++i) {
        auto doc = make();
        gen.fill(doc.get(), 0, false);
        REQUIRE(valid_deep(*doc));  // the second opinion says yes to valid documents
        std::vector<std::uint8_t> bytes(bson_get_data(doc.get()),
                                        bson_get_data(doc.get()) + doc->len);
        if (bytes.size() <= 5) continue;
        const std::size_t flips = pick(1, 3);
        for (std::size_t f = 0; f < flips; ++f) {
            // Keep the header (bson_init_static checks it) and the final NUL.
            const std::size_t at = pick(4, bytes.size() - 2);
            switch (pick(0, 3)) {
                case 0:
                    bytes[at] = static_cast<std::uint8_t>(rng());
                    break;
                case 1:
                    bytes[at] ^= static_cast<std::uint8_t>(1u << pick(0, 7));
                    break;
                case 2:
                    bytes[at] = 0;
                    break;
                default:
                    bytes[at] = static_cast<std::uint8_t>(bytes[at] + pick(0, 2) - 1);
                    break;
            }
        }
        bson_t view;
        REQUIRE(bson_init_static(&view, bytes.data(), bytes.size()));
        auto expected = libbson_json(view);
        const auto got = ours(view);
        boost::system::error_code ec;
        if (expected) boost::json::parse(*expected, ec);
        if (expected && !got && (ec || !valid_deep(view))) {
            // Where a nested document or scope is corrupt, libbson may print what it read of
            // it and go on: either not JSON ({"a" : }) or valid JSON with parts missing. We
            // refuse those; libbson's own validator (run into the scopes) calls them corrupt.
            ++libbson_partial;
            expected.reset();
        }
        INFO("case " << i << ": " << hex(bytes));
        INFO("libbson: " << expected.value_or("(refused)"));
        INFO("ours:    " << got.value_or("(refused)"));
        REQUIRE(got == expected);
        ++(expected ? compared : refused);
    }
    INFO(refused << " refused, " << compared << " accepted, " << libbson_partial
                 << " refused where libbson printed part of a corrupt document");
    CHECK(refused > iterations / 20);
    CHECK(compared > iterations / 20);

    // Headers that do not describe the buffer.
    std::uint8_t tiny[5] = {5, 0, 0, 0, 0};
    bson_t view;
    REQUIRE(bson_init_static(&view, tiny, sizeof tiny));
    REQUIRE(to_relaxed_json(view) == "{}");
    view.len = 4;
    REQUIRE_THROWS_AS(to_relaxed_json(view), coroserve::bson_json_error);
    view.len = 5;
    tiny[4] = 1;
    REQUIRE_THROWS_AS(to_relaxed_json(view), coroserve::bson_json_error);
    tiny[4] = 0;
    tiny[0] = 6;
    REQUIRE_THROWS_AS(to_relaxed_json(view), coroserve::bson_json_error);

    // The output buffer is left as it was.
    std::string out = "kept";
    auto bad = make();
    BSON_APPEND_INT32(bad.get(), "a", 1);
    BSON_APPEND_UTF8(bad.get(), "b", "\xff");
    REQUIRE_THROWS_AS(coroserve::append_relaxed_json(out, *bad), coroserve::bson_json_error);
    REQUIRE(out == "kept");
}
