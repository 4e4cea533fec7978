// BSON to JSON: our writer against the Extended JSON specification (its rules and the BSON
// corpus' cases, written out below by hand), and against libbson's bson_as_relaxed_extended_json
// where libbson 1.23 and 1.30 agree, compared by value where only the text of a number
// differs (libbson prints doubles with %.20g, we print the shortest that reads back).
#include "bson_json.hpp"

#include <bson/bson.h>

#include <algorithm>
#include <boost/json.hpp>
#include <catch2/catch.hpp>
#include <charconv>
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

// Boost.JSON stops at 32 levels by default; our output nests up to 2 x 200 + a few.
void parse_json(const std::string& s, boost::system::error_code& ec) {
    boost::json::parse_options opt;
    opt.max_depth = 1000;
    boost::json::parse(s, ec, {}, opt);
}

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

std::vector<std::uint8_t> from_hex(std::string_view hex) {
    std::vector<std::uint8_t> out;
    for (std::size_t i = 0; i + 1 < hex.size(); i += 2) {
        unsigned v = 0;
        std::from_chars(hex.data() + i, hex.data() + i + 2, v, 16);
        out.push_back(static_cast<std::uint8_t>(v));
    }
    return out;
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

// Compact JSON as tokens: punctuation, whole string literals, whole numbers, true/false/null.
std::vector<std::string> tokens(std::string_view s) {
    std::vector<std::string> out;
    std::size_t i = 0;
    while (i < s.size()) {
        const char c = s[i];
        std::size_t j = i + 1;
        if (c == '"') {
            while (j < s.size() && s[j] != '"') j += s[j] == '\\' ? 2 : 1;
            ++j;
        } else if (c == '-' || (c >= '0' && c <= '9')) {
            while (j < s.size() && std::strchr("0123456789+-.eE", s[j]) != nullptr) ++j;
        } else if (c >= 'a' && c <= 'z') {
            while (j < s.size() && s[j] >= 'a' && s[j] <= 'z') ++j;
        }
        out.emplace_back(s.substr(i, j - i));
        i = j;
    }
    return out;
}

bool is_number(const std::string& t) {
    return !t.empty() && (t[0] == '-' || (t[0] >= '0' && t[0] <= '9'));
}

// Days from 1970-01-01 to a civil date (proleptic Gregorian).
std::int64_t days_from_civil(std::int64_t y, int m, int d) {
    y -= m <= 2 ? 1 : 0;
    const std::int64_t era = (y >= 0 ? y : y - 399) / 400;
    const std::int64_t yoe = y - era * 400;
    const std::int64_t doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    const std::int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

// "YYYYY-MM-DDTHH:MM:SS[.mmm]Z" (a year of any length) to milliseconds since the epoch.
std::int64_t iso_to_ms(std::string_view iso) {
    const auto dash = iso.find('-');
    std::int64_t year = 0;
    std::from_chars(iso.data(), iso.data() + dash, year);
    auto num = [&](std::size_t at, std::size_t n) {
        int v = 0;
        std::from_chars(iso.data() + at, iso.data() + at + n, v);
        return v;
    };
    const std::size_t t = dash + 1;
    std::int64_t ms = (days_from_civil(year, num(t, 2), num(t + 3, 2)) * 86400 +
                       num(t + 6, 2) * 3600 + num(t + 9, 2) * 60 + num(t + 12, 2)) *
                      1000;
    if (iso[t + 14] == '.') ms += num(t + 15, 3);
    return ms;
}

// libbson's output as the specification writes it where the two only differ in form: dates
// past year 9999 (libbson 1.23 prints them as ISO-8601 with a longer year) become
// {"$date":{"$numberLong":...}}.
std::vector<std::string> spec_form(std::vector<std::string> t) {
    for (std::size_t i = 0; i + 4 < t.size(); ++i) {
        if (t[i] == "{" && t[i + 1] == R"("$date")" && t[i + 2] == ":" && t[i + 3][0] == '"' &&
            t[i + 3].find('-') > 5 && t[i + 4] == "}") {
            const std::int64_t ms = iso_to_ms(std::string_view(t[i + 3]).substr(1));
            std::string number = std::to_string(ms);
            number.insert(number.begin(), '"');
            number.push_back('"');
            const std::vector<std::string> wrapped = {"{", R"("$numberLong")", ":", number, "}"};
            t.erase(t.begin() + static_cast<std::ptrdiff_t>(i + 3));
            t.insert(t.begin() + static_cast<std::ptrdiff_t>(i + 3), wrapped.begin(),
                     wrapped.end());
        }
    }
    return t;
}

// Same JSON value: the same tokens, except that numbers are compared by what they read as
// (an integer as its text; a non-integer, which relaxed Extended JSON uses for doubles only,
// by the double strtod() reads, sign of zero included), after spec_form() on libbson's side.
bool same_value(const std::string& got, const std::string& libbson) {
    const auto a = tokens(got);
    const auto b = spec_form(tokens(libbson));
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i) {
        if (a[i] == b[i]) continue;
        if (!is_number(a[i]) || !is_number(b[i])) return false;
        const bool a_int = a[i].find_first_of(".eE") == std::string::npos;
        const bool b_int = b[i].find_first_of(".eE") == std::string::npos;
        if (a_int || b_int) return false;  // integers must match as text
        const double x = std::strtod(a[i].c_str(), nullptr);
        const double y = std::strtod(b[i].c_str(), nullptr);
        if (std::memcmp(&x, &y, sizeof x) != 0) return false;
    }
    return true;
}

// The full check for a valid document: the same value as libbson's output (where libbson
// 1.23 and 1.30 agree on this document), valid JSON, and libbson's parser reads it back to a
// document that prints the same (or, where asked, to the document itself).
void check(const bson_t& doc, bool round_trips_exactly = false) {
    const auto expected = libbson_json(doc);
    REQUIRE(expected.has_value());
    const std::string got = to_relaxed_json(doc);
    INFO("ours:    " << got);
    INFO("libbson: " << *expected);
    REQUIRE(same_value(got, *expected));

    boost::system::error_code ec;
    parse_json(got, ec);
    REQUIRE(!ec);

    const bson_ptr back = from_json(got);
    REQUIRE(to_relaxed_json(*back) == got);
    if (round_trips_exactly) REQUIRE(bson_equal(back.get(), &doc));

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

std::string one_double(double v) {
    auto d = make();
    BSON_APPEND_DOUBLE(d.get(), "d", v);
    const std::string json = to_relaxed_json(*d);
    return json.substr(5, json.size() - 6);  // {"d":...}
}

// Our double format, written independently of the writer from std::to_chars' shortest
// scientific form: positional for exponents -4..15 (with ".0" on integers), d.dddE+x
// otherwise, as Python's repr() chooses and as the BSON corpus writes exponents.
std::string reference_double(double v) {
    char buf[64];
    const auto r = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::scientific);
    const std::string sci(buf, r.ptr);
    const auto e = sci.find('e');
    const int exp = std::stoi(sci.substr(e + 1));
    std::string mant = sci.substr(0, e);
    const bool neg = mant[0] == '-';
    if (neg) mant.erase(0, 1);
    mant.erase(std::remove(mant.begin(), mant.end(), '.'), mant.end());  // the digits
    std::string out = neg ? "-" : "";
    if (exp < -4 || exp >= 16) {
        out += mant[0];
        if (mant.size() > 1) out.append(".").append(mant, 1);
        out.append(exp < 0 ? "E-" : "E+").append(std::to_string(std::abs(exp)));
        return out;
    }
    if (exp < 0) return out + "0." + std::string(static_cast<std::size_t>(-exp - 1), '0') + mant;
    const auto int_digits = static_cast<std::size_t>(exp) + 1;
    if (mant.size() <= int_digits)
        return out + mant + std::string(int_digits - mant.size(), '0') + ".0";
    return out + mant.substr(0, int_digits) + "." + mant.substr(int_digits);
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

TEST_CASE("doubles: the shortest text that reads back, never an integer", "[unit]") {
    // The corpus' relaxed forms (double.json), then our layout choices around them.
    const std::pair<double, const char*> cases[] = {
        {1.0, "1.0"},
        {-1.0, "-1.0"},
        {1.0001220703125, "1.0001220703125"},
        {-1.0001220703125, "-1.0001220703125"},
        {1.2345678921232e18, "1.2345678921232E+18"},
        {-1.2345678921232e18, "-1.2345678921232E+18"},
        {0.0, "0.0"},
        {-0.0, "-0.0"},
        {22.326464, "22.326464"},
        {114.819843, "114.819843"},
        {-33.5, "-33.5"},
        {0.1, "0.1"},
        {1.0 / 3, "0.3333333333333333"},
        {123456.0, "123456.0"},
        {1e15, "1000000000000000.0"},
        {9007199254740993.0, "9007199254740992.0"},
        {1e16, "1E+16"},
        {1.5e300, "1.5E+300"},
        {1e-4, "0.0001"},
        {1.25e-4, "0.000125"},
        {1e-5, "1E-5"},
        {5e-324, "5E-324"},
        {std::numeric_limits<double>::max(), "1.7976931348623157E+308"},
        {std::numeric_limits<double>::min(), "2.2250738585072014E-308"},
        {std::numeric_limits<double>::epsilon(), "2.220446049250313E-16"},
    };
    for (const auto& [v, text] : cases) {
        INFO(text);
        REQUIRE(one_double(v) == text);
        REQUIRE(reference_double(v) == text);
        auto doc = make();
        BSON_APPEND_DOUBLE(doc.get(), "d", v);
        check(*doc, true);
    }
    auto doc = make();
    BSON_APPEND_DOUBLE(doc.get(), "z", -0.0);
    BSON_APPEND_DOUBLE(doc.get(), "i", 3.0);
    BSON_APPEND_DOUBLE(doc.get(), "f", 0.1);
    BSON_APPEND_DOUBLE(doc.get(), "e", 1e21);
    REQUIRE(to_relaxed_json(*doc) == R"({"z":-0.0,"i":3.0,"f":0.1,"e":1E+21})");
    check(*doc, true);

    // Non-finite values keep their wrapper in relaxed mode (double.json), NaN payloads too.
    auto special = make();
    BSON_APPEND_DOUBLE(special.get(), "nan", std::numeric_limits<double>::quiet_NaN());
    BSON_APPEND_DOUBLE(special.get(), "mnan", -std::numeric_limits<double>::quiet_NaN());
    BSON_APPEND_DOUBLE(special.get(), "inf", std::numeric_limits<double>::infinity());
    BSON_APPEND_DOUBLE(special.get(), "minf", -std::numeric_limits<double>::infinity());
    REQUIRE(to_relaxed_json(*special) ==
            R"({"nan":{"$numberDouble":"NaN"},"mnan":{"$numberDouble":"NaN"},)"
            R"("inf":{"$numberDouble":"Infinity"},"minf":{"$numberDouble":"-Infinity"}})");
    check(*special);
}

TEST_CASE("doubles: random values read back exactly, in the reference layout", "[unit]") {
    std::mt19937_64 rng(1);
    auto one = [](double v) {
        if (std::isnan(v) || std::isinf(v)) return;
        const std::string text = one_double(v);
        INFO(text);
        REQUIRE(text == reference_double(v));
        const double back = std::strtod(text.c_str(), nullptr);
        REQUIRE(std::memcmp(&back, &v, sizeof v) == 0);
        REQUIRE(text.find_first_of(".E") != std::string::npos);  // never reads as an integer
    };
    for (int i = 0; i < 20000; ++i) {
        // Any bit pattern; integers; short decimals (coordinates, prices) of every scale;
        // any mantissa at the scales of the positional layout; neighbours of powers of ten.
        std::uint64_t bits = rng();
        double v;
        std::memcpy(&v, &bits, sizeof v);
        one(v);
        one(static_cast<double>(static_cast<std::int64_t>(rng()) >> (rng() % 64)));
        one(static_cast<double>(static_cast<std::int64_t>(rng() % 2000000000) - 1000000000) /
            std::pow(10.0, static_cast<double>(rng() % 12)));
        one(std::ldexp(static_cast<double>(rng() >> 11), -static_cast<int>(rng() % 80)));
        one(std::nextafter(std::pow(10.0, static_cast<double>(rng() % 40) - 20),
                           (rng() & 1) != 0 ? 0.0 : 1e300));
    }
    // libbson (%.20g, both 1.23 and 1.30) prints other digits for the same values.
    for (int i = 0; i < 5000; ++i) {
        auto d = make();
        std::uint64_t bits = rng();
        double v;
        std::memcpy(&v, &bits, sizeof v);
        BSON_APPEND_DOUBLE(d.get(), "r", v);
        BSON_APPEND_DOUBLE(d.get(), "c", static_cast<double>(rng() % 100000000) / 1e6);
        const auto expected = libbson_json(*d);
        REQUIRE(expected.has_value());
        INFO(*expected);
        REQUIRE(same_value(to_relaxed_json(*d), *expected));
    }
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

TEST_CASE("strings: escapes, control characters, UTF-8", "[unit][scan]") {
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

TEST_CASE("invalid UTF-8 is refused (the corpus' decode error), as libbson refuses it",
          "[unit][scan]") {
    // RFC 3629 UTF-8: no overlong forms (C0 80 included, which libbson 1.30 reads as NUL
    // and 1.23 refuses), no surrogates, nothing past U+10FFFF, no truncated sequences.
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
        // Also past the 16-byte blocks of the fast scan.
        for (const std::string& text : {s, std::string(37, 'x') + s + std::string(20, 'y')}) {
            auto value = make();
            bson_append_utf8(value.get(), "v", -1, text.data(), static_cast<int>(text.size()));
            REQUIRE_THROWS_AS(to_relaxed_json(*value), coroserve::bson_json_error);
            auto key = make();
            bson_append_int32(key.get(), text.c_str(), -1, 1);
            REQUIRE_THROWS_AS(to_relaxed_json(*key), coroserve::bson_json_error);
            if (s != "\xc0\x80") {
                REQUIRE_FALSE(libbson_json(*value).has_value());
                REQUIRE_FALSE(libbson_json(*key).has_value());
            }
        }
    }
    // All one- and two-byte sequences and every 61st three-byte one, against libbson
    // (C0 80 aside, above).
    std::uint8_t buf[3];
    for (std::uint32_t v = 0x80; v < (1u << 24); v += (v < 0x10000 ? 1 : 61)) {
        const int n = v < 0x100 ? 1 : v < 0x10000 ? 2 : 3;
        for (int i = 0; i < n; ++i) buf[i] = static_cast<std::uint8_t>(v >> (8 * (n - 1 - i)));
        // C0 80 anywhere is the one case libbson 1.23 and 1.30 disagree on (see above).
        const bool c0_80 = (n >= 2 && buf[0] == 0xc0 && buf[1] == 0x80) ||
                           (n == 3 && buf[1] == 0xc0 && buf[2] == 0x80);
        if (buf[0] < 0x80 || c0_80) continue;
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

TEST_CASE("strings of every length around the 16-byte blocks, escapes anywhere", "[unit][scan]") {
    for (std::size_t n = 0; n < 70; ++n) {
        for (std::size_t at = 0; at <= n; at += (n < 20 ? 1 : 7)) {
            for (const char* special : {"", "\"", "\\", "\n", "\x01", "\xc3\xa9", "\xe2\x82\xac"}) {
                std::string text(n, 'a');
                text.insert(at, special);
                std::string expected_text = text;
                if (std::string_view(special) == "\"") expected_text.replace(at, 1, "\\\"");
                if (std::string_view(special) == "\\") expected_text.replace(at, 1, "\\\\");
                if (std::string_view(special) == "\n") expected_text.replace(at, 1, "\\n");
                if (std::string_view(special) == "\x01") expected_text.replace(at, 1, "\\u0001");
                auto doc = make();
                // Last in the document (the scan meets the end of the input) and not.
                bson_append_utf8(doc.get(), text.c_str(), -1, text.data(),
                                 static_cast<int>(text.size()));
                std::string one = "{\"";
                one.append(expected_text).append("\":\"").append(expected_text).append("\"}");
                REQUIRE(to_relaxed_json(*doc) == one);
                BSON_APPEND_INT32(doc.get(), "z", 1);
                REQUIRE(to_relaxed_json(*doc) == one.substr(0, one.size() - 1) + R"(,"z":1})");
            }
        }
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

TEST_CASE("dates: ISO-8601 for years 1970 to 9999, $numberLong outside", "[unit]") {
    const std::pair<std::int64_t, const char*> cases[] = {
        {0, R"("1970-01-01T00:00:00Z")"},
        {1356351330501, R"("2012-12-24T12:15:30.501Z")"},       // datetime.json
        {1356351330001, R"("2012-12-24T12:15:30.001Z")"},       // datetime.json: leading zero ms
        {-284643869501, R"({"$numberLong":"-284643869501"})"},  // datetime.json: negative
        {253402300800000, R"({"$numberLong":"253402300800000"})"},  // datetime.json: Y10K
        {-1, R"({"$numberLong":"-1"})"},
        {1, R"("1970-01-01T00:00:00.001Z")"},
        {1400000000010, R"("2014-05-13T16:53:20.010Z")"},
        {951782400000, R"("2000-02-29T00:00:00Z")"},
        {951868800000, R"("2000-03-01T00:00:00Z")"},
        {4107542400000, R"("2100-03-01T00:00:00Z")"},
        {253402300799999, R"("9999-12-31T23:59:59.999Z")"},
        {-62135596800000, R"({"$numberLong":"-62135596800000"})"},
        {std::numeric_limits<std::int64_t>::max(), R"({"$numberLong":"9223372036854775807"})"},
        {std::numeric_limits<std::int64_t>::min(), R"({"$numberLong":"-9223372036854775808"})"},
    };
    for (const auto& [ms, date] : cases) {
        auto doc = make();
        BSON_APPEND_DATE_TIME(doc.get(), "t", ms);
        INFO(ms);
        REQUIRE(to_relaxed_json(*doc) == std::string(R"({"t":{"$date":)") + date + "}}");
        check(*doc, true);
    }
    // libbson 1.23 and 1.30 agree up to 9999-12-31; past it 1.23 prints a longer year, which
    // same_value() reads as the milliseconds it stands for.
    std::mt19937_64 rng(2);
    for (int i = 0; i < 20000; ++i) {
        auto d = make();
        const auto ms = static_cast<std::int64_t>(rng()) >> (rng() % 64);
        BSON_APPEND_DATE_TIME(d.get(), "t", ms);
        const auto expected = libbson_json(*d);
        REQUIRE(expected.has_value());
        INFO(*expected);
        REQUIRE(same_value(to_relaxed_json(*d), *expected));
        if (ms >= 0 && ms <= 253402300799999) REQUIRE(to_relaxed_json(*d) == *expected);
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

    // A NUL inside a dbpointer's collection name: the specification prints the BSON string
    // whole, as it prints strings with NULs (string.json: embedded nulls); libbson 1.23 stops
    // the name at the NUL and 1.30 stops its whole output there.
    const auto bytes = from_hex("1C0000000C710004000000610062005377CBA55F41D42BC973D50600");
    bson_t view;
    REQUIRE(bson_init_static(&view, bytes.data(), bytes.size()));
    REQUIRE(
        to_relaxed_json(view) ==
        R"({"q":{"$dbPointer":{"$ref":"a\u0000b","$id":{"$oid":"5377cba55f41d42bc973d506"}}}})");

    std::mt19937_64 rng(6);
    for (int i = 0; i < 20000; ++i) {
        auto d = make();
        bson_decimal128_t dec{rng(), rng()};
        BSON_APPEND_DECIMAL128(d.get(), "d", &dec);
        REQUIRE(to_relaxed_json(*d) == libbson_json(*d));
    }
}

namespace {
// libbson 1.23 and 1.30 print it whole, as we do (their parser stops at 100 levels, so no
// round trip here).
void same_as_libbson(const bson_t& doc) {
    const auto expected = libbson_json(doc);
    REQUIRE(expected.has_value());
    const std::string got = to_relaxed_json(doc);
    REQUIRE(same_value(got, *expected));
    boost::system::error_code ec;
    parse_json(got, ec);
    REQUIRE(!ec);
}

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

// `levels` code-with-scope values, each in the scope of the one before.
bson_ptr nested_scopes(int levels) {
    auto doc = make();
    BSON_APPEND_INT32(doc.get(), "x", 1);
    for (int i = 0; i < levels; ++i) {
        auto outer = make();
        BSON_APPEND_CODE_WITH_SCOPE(outer.get(), "c", "f()", doc.get());
        doc = std::move(outer);
    }
    return doc;
}
}  // namespace

TEST_CASE("nesting: 200 levels printed whole, deeper refused (never a non-JSON cut)", "[unit]") {
    static_assert(coroserve::max_json_depth == 200);
    for (bool arrays : {false, true}) {
        // libbson 1.23 and 1.30 print these whole.
        for (int depth : {1, 100, 199}) same_as_libbson(*nest(depth, arrays));
        // libbson 1.30 cuts at 200 and 1.23 at 201, as "{...}", which is not JSON; we print
        // 200 levels, the specification's 100 and then some, and refuse deeper documents.
        const std::string deepest = to_relaxed_json(*nest(200, arrays));
        REQUIRE(deepest.find(arrays ? "[[" : R"({"0":{"0":)") != std::string::npos);
        REQUIRE(std::count(deepest.begin(), deepest.end(), arrays ? '[' : '{') ==
                (arrays ? 200 : 201));
        boost::system::error_code ec;
        parse_json(deepest, ec);
        REQUIRE(!ec);
        for (int depth : {201, 1000}) {
            REQUIRE_THROWS_AS(to_relaxed_json(*nest(depth, arrays)), coroserve::bson_json_error);
        }
    }
    // A code-with-scope scope is one level deeper than the document that holds it.
    same_as_libbson(*nested_scopes(100));
    REQUIRE_NOTHROW(to_relaxed_json(*nested_scopes(200)));
    REQUIRE_THROWS_AS(to_relaxed_json(*nested_scopes(201)), coroserve::bson_json_error);
    REQUIRE_THROWS_AS(to_relaxed_json(*nested_scopes(1200)), coroserve::bson_json_error);
    // Scopes and documents count together: 150 documents, then "y" (151), then the scope
    // (152), then `inner` more levels inside the scope.
    for (int inner : {47, 48, 49}) {
        auto holder = make();
        BSON_APPEND_CODE_WITH_SCOPE(holder.get(), "c", "f", nest(inner, false).get());
        auto chain = make();
        BSON_APPEND_DOCUMENT(chain.get(), "y", holder.get());
        for (int i = 0; i < 150; ++i) {
            auto o = make();
            BSON_APPEND_DOCUMENT(o.get(), "0", chain.get());
            chain = std::move(o);
        }
        INFO(inner);
        if (152 + inner <= coroserve::max_json_depth) {
            REQUIRE_NOTHROW(to_relaxed_json(*chain));
        } else {
            REQUIRE_THROWS_AS(to_relaxed_json(*chain), coroserve::bson_json_error);
        }
    }
}

TEST_CASE("the two seed documents", "[unit][scan]") {
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
    // Doubles as the document holds them (libbson: 22.32646400000000142).
    const std::string big =
        read_file(std::string(COROSERVE_SOURCE_DIR) + "/bench/data/big_doc.json");
    const std::string out = to_relaxed_json(*from_json(big));
    REQUIRE(out.find(R"("latitude":22.326464,"longitude":114.819843,)") != std::string::npos);
    REQUIRE(out.size() == 5962);
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

TEST_CASE("random documents with every type: the value libbson prints", "[unit][scan]") {
    generator gen(3);
    int unparsed = 0;
    for (int i = 0; i < 3000; ++i) {
        auto doc = make();
        gen.fill(doc.get(), 0, false);
        const auto expected = libbson_json(*doc);
        REQUIRE(expected.has_value());
        const std::string got = to_relaxed_json(*doc);
        INFO("libbson: " << *expected);
        REQUIRE(same_value(got, *expected));
        boost::system::error_code ec;
        parse_json(got, ec);
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
// nested documents without their final NUL, everything inside code-with-scope scopes, a
// code-with-scope's code without its NUL, and a document whose elements end (a NUL type
// byte) before its stated length (libbson prints those; the specification calls them
// decode errors, as we do).
bool valid_deep(const bson_t& doc);

bool walk_valid(bson_iter_t& it, std::uint32_t doc_len) {
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
            if (!bson_iter_init(&sub, &child) || !walk_valid(sub, len)) return false;
        } else if (BSON_ITER_HOLDS_CODEWSCOPE(&it)) {
            std::uint32_t code_len = 0, scope_len = 0;
            const std::uint8_t* scope_data = nullptr;
            const char* code = bson_iter_codewscope(&it, &code_len, &scope_len, &scope_data);
            if (code == nullptr || code[code_len] != '\0') return false;
            bson_t scope;
            if (!bson_init_static(&scope, scope_data, scope_len) || !valid_deep(scope)) {
                return false;
            }
        }
    }
    // bson_iter_next stopped at the end, not at an error, and the end (where it.off stays)
    // is the last byte.
    return it.err_off == 0 && it.off + 1 == doc_len;
}

// Whether a dbpointer anywhere in the document has a NUL in its collection name.
bool has_dbpointer_with_nul(const bson_t& doc) {
    bson_iter_t it;
    if (!bson_iter_init(&it, &doc)) return false;
    while (bson_iter_next(&it)) {
        if (BSON_ITER_HOLDS_DBPOINTER(&it)) {
            std::uint32_t len = 0;
            const char* coll = nullptr;
            const bson_oid_t* oid = nullptr;
            bson_iter_dbpointer(&it, &len, &coll, &oid);
            if (coll != nullptr && std::memchr(coll, 0, len) != nullptr) return true;
        } else if (BSON_ITER_HOLDS_DOCUMENT(&it) || BSON_ITER_HOLDS_ARRAY(&it) ||
                   BSON_ITER_HOLDS_CODEWSCOPE(&it)) {
            std::uint32_t len = 0, code_len = 0;
            const std::uint8_t* data = nullptr;
            if (BSON_ITER_HOLDS_DOCUMENT(&it)) {
                bson_iter_document(&it, &len, &data);
            } else if (BSON_ITER_HOLDS_ARRAY(&it)) {
                bson_iter_array(&it, &len, &data);
            } else {
                bson_iter_codewscope(&it, &code_len, &len, &data);
            }
            bson_t child;
            if (data != nullptr && bson_init_static(&child, data, len) &&
                has_dbpointer_with_nul(child)) {
                return true;
            }
        }
    }
    return false;
}

bool valid_deep(const bson_t& doc) {
    if (!bson_validate(&doc, BSON_VALIDATE_NONE, nullptr)) return false;
    bson_iter_t it;
    return bson_iter_init(&it, &doc) && walk_valid(it, doc.len);
}

}  // namespace

TEST_CASE("corrupt BSON: refused where libbson refuses it or prints part of it, and no crash",
          "[unit]") {
    // Where libbson accepts, we print the same value, except a dbpointer with a NUL in its
    // collection name (see "the other types"), which we only require to be valid JSON.
    generator gen(4);
    std::mt19937_64 rng(5);
    auto pick = [&](std::size_t lo, std::size_t hi) {
        return std::uniform_int_distribution<std::size_t>(lo, hi)(rng);
    };
    int refused = 0, compared = 0, libbson_partial = 0, nul_pointers = 0;
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
        if (expected) parse_json(*expected, ec);
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
        REQUIRE(got.has_value() == expected.has_value());
        if (got) {
            parse_json(*got, ec);
            REQUIRE(!ec);
            if (has_dbpointer_with_nul(view)) {
                ++nul_pointers;
            } else {
                REQUIRE(same_value(*got, *expected));
            }
        }
        ++(expected ? compared : refused);
    }
    INFO(refused << " refused, " << compared << " accepted (" << nul_pointers
                 << " with a NUL in a dbpointer), " << libbson_partial
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
