// BSON to compact relaxed extended JSON, written straight from the BSON bytes into the
// caller's buffer. The rules (number formats, escapes, dates, regex options, the depth cap)
// were read off libbson 1.23's output; tests/unit/bson_json_test.cpp checks them against it.
#include "bson_json.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <cstdint>
#include <cstring>
#include <string_view>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace coroserve {
namespace {

// libbson prints a document or array nested deeper than this as "{ ... }" (not JSON).
constexpr int max_depth = 200;
// libbson restarts its depth count inside a code-with-scope scope; this bounds our
// recursion (and stack) whatever the input.
constexpr int max_recursion = 1000;

[[noreturn]] void corrupt(const char* what) {
    throw bson_json_error(std::string("corrupt BSON: ") + what);
}

// Little-endian loads that compile to one mov on x86 and stay correct elsewhere.
std::uint32_t load_u32(const std::uint8_t* p) {
    return std::uint32_t{p[0]} | std::uint32_t{p[1]} << 8 | std::uint32_t{p[2]} << 16 |
           std::uint32_t{p[3]} << 24;
}
std::int32_t load_i32(const std::uint8_t* p) {
    return static_cast<std::int32_t>(load_u32(p));
}
std::uint64_t load_u64(const std::uint8_t* p) {
    return std::uint64_t{load_u32(p)} | std::uint64_t{load_u32(p + 4)} << 32;
}
std::int64_t load_i64(const std::uint8_t* p) {
    return static_cast<std::int64_t>(load_u64(p));
}

// Byte classes for string escaping: 0 copies as is, 1 needs an escape, 2..4 starts a UTF-8
// sequence of that length, 5 can never appear in UTF-8.
constexpr std::array<std::uint8_t, 256> make_byte_class() {
    std::array<std::uint8_t, 256> c{};
    for (int i = 0; i < 0x20; ++i) c[i] = 1;
    c['"'] = 1;
    c['\\'] = 1;
    for (int i = 0x80; i < 0xC2; ++i) c[i] = 5;  // continuation bytes and overlong C0/C1
    for (int i = 0xC2; i < 0xE0; ++i) c[i] = 2;
    for (int i = 0xE0; i < 0xF0; ++i) c[i] = 3;
    for (int i = 0xF0; i < 0xF5; ++i) c[i] = 4;
    for (int i = 0xF5; i < 0x100; ++i) c[i] = 5;
    return c;
}
constexpr auto byte_class = make_byte_class();

constexpr char hex_digits[] = "0123456789abcdef";

bool is_cont(std::uint8_t b) {
    return (b & 0xC0) == 0x80;
}

// Length of the valid UTF-8 sequence at s (lead byte of class 2..4), or 0 if invalid.
// Rejects overlong forms, surrogates and code points above U+10FFFF, as libbson does.
std::size_t utf8_sequence(const std::uint8_t* s, const std::uint8_t* end, std::uint8_t cls) {
    if (static_cast<std::size_t>(end - s) < cls) return 0;
    const std::uint8_t b0 = s[0], b1 = s[1];
    if (!is_cont(b1)) return 0;
    if (cls == 2) return 2;
    if (!is_cont(s[2])) return 0;
    if (cls == 3) {
        if (b0 == 0xE0 && b1 < 0xA0) return 0;   // overlong
        if (b0 == 0xED && b1 >= 0xA0) return 0;  // UTF-16 surrogates
        return 3;
    }
    if (!is_cont(s[3])) return 0;
    if (b0 == 0xF0 && b1 < 0x90) return 0;   // overlong
    if (b0 == 0xF4 && b1 >= 0x90) return 0;  // above U+10FFFF
    return 4;
}

bool valid_utf8(const std::uint8_t* s, std::size_t n) {
    const std::uint8_t* end = s + n;
    while (s < end) {
        const std::uint8_t cls = byte_class[*s];
        if (cls < 2) {
            ++s;
            continue;
        }
        const std::size_t len = cls == 5 ? 0 : utf8_sequence(s, end, cls);
        if (len == 0) return false;
        s += len;
    }
    return true;
}

__extension__ typedef unsigned __int128 uint128;  // GCC and Clang; -Wpedantic is fine with this

// printf("%.20g", v) for 1 <= |v| < 1e15 (coordinates, prices, ...), about five times faster
// than std::to_chars: |v| = m * 2^-s exactly, so the 20 significant digits are
// m * 10^k / 2^s rounded half to even, as glibc rounds, with k = 20 - (integer digits); the
// product stays under 2^117. Returns the end of the text, or nullptr to leave v to the
// general path (other magnitudes, and the rare rounding up to a 21st digit).
char* format_g20_fast(double v, char* out) {
    std::uint64_t bits;
    std::memcpy(&bits, &v, sizeof bits);
    const int biased = static_cast<int>((bits >> 52) & 0x7ff);
    const int s = 1075 - biased;  // |v| = m * 2^-s
    if (biased < 1023 || v >= 1e15 || v <= -1e15 || s <= 0) return nullptr;
    const std::uint64_t m = (bits & ((std::uint64_t{1} << 52) - 1)) | (std::uint64_t{1} << 52);
    const std::uint64_t int_part = m >> s;
    static constexpr auto pow10 = [] {
        std::array<std::uint64_t, 20> p{};
        p[0] = 1;
        for (std::size_t i = 1; i < p.size(); ++i) p[i] = p[i - 1] * 10;
        return p;
    }();
    int int_digits = 1;
    while (int_digits < 16 && int_part >= pow10[static_cast<std::size_t>(int_digits)]) ++int_digits;
    const std::uint64_t scale = pow10[static_cast<std::size_t>(20 - int_digits)];
    const uint128 n = uint128{m} * scale;
    uint128 q = n >> s;
    const uint128 rest = n & ((uint128{1} << s) - 1);
    const uint128 half = uint128{1} << (s - 1);
    if (rest > half || (rest == half && (q & 1) != 0)) ++q;
    constexpr std::uint64_t e10 = 10000000000;
    const uint128 e20 = uint128{e10} * e10;
    if (q >= e20) return nullptr;
    // The 20 digits, in two halves that fit in 64 bits.
    char digits[20];
    // q < 10^20 < 2^67 and 10^10 = 2^10 * 9765625: a 64-bit division does it.
    std::uint64_t hi = static_cast<std::uint64_t>(q >> 10) / (e10 >> 10);
    std::uint64_t lo = static_cast<std::uint64_t>(q) - hi * e10;
    for (int i = 19; i >= 10; --i, lo /= 10) digits[i] = static_cast<char>('0' + lo % 10);
    for (int i = 9; i >= 0; --i, hi /= 10) digits[i] = static_cast<char>('0' + hi % 10);
    int last = 19;  // %g drops trailing zeros of the fraction, and the point with them
    while (last >= int_digits && digits[last] == '0') --last;
    char* o = out;
    if (v < 0) *o++ = '-';
    std::memcpy(o, digits, static_cast<std::size_t>(int_digits));
    o += int_digits;
    if (last >= int_digits) {
        *o++ = '.';
        const auto frac = static_cast<std::size_t>(last + 1 - int_digits);
        std::memcpy(o, digits + int_digits, frac);
        o += frac;
    }
    return o;
}

class writer {
  public:
    // Writes through a raw pointer into `out` grown ahead (std::string::push_back reloads
    // size and capacity at every call); finish() trims it to what was written.
    // `expected` is a first guess at the output size, not a bound.
    writer(std::string& out, std::size_t expected) : out_(out) {
        const std::size_t used = out_.size();
        std::size_t want = used + expected + expected / 2 + 64;
        // Compact JSON is rarely longer than its BSON: spare capacity of that size (a
        // caller's reserve() or a reused buffer) is used rather than reallocated.
        if (out_.capacity() - used >= expected) want = std::min(want, out_.capacity());
        out_.resize(want);
        p_ = out_.data() + used;
        end_ = out_.data() + out_.size();
    }
    void finish() { out_.resize(static_cast<std::size_t>(p_ - out_.data())); }

    void document(const std::uint8_t* doc, std::uint32_t len, bool is_array, int depth,
                  int recursion);

    // libbson prints a top-level document, and a code-with-scope scope (printed as one),
    // as "{ }" when its first type byte is NUL (bson_empty()), whatever follows.
    void scope_document(const std::uint8_t* doc, std::uint32_t len, int recursion) {
        if (doc[4] == 0) return put("{}");
        document(doc, len, false, 0, recursion);
    }

  private:
    // Room for n more bytes; returns where they go and moves past them.
    char* grab(std::size_t n) {
        if (static_cast<std::size_t>(end_ - p_) < n) grow(n);
        char* at = p_;
        p_ += n;
        return at;
    }
    void grow(std::size_t n) {
        const std::size_t used = static_cast<std::size_t>(p_ - out_.data());
        out_.resize(std::max(used + n, out_.size() * 2));
        p_ = out_.data() + used;
        end_ = out_.data() + out_.size();
    }
    void append(const void* s, std::size_t n) { std::memcpy(grab(n), s, n); }
    void put(char c) { *grab(1) = c; }
    void put(std::string_view s) { append(s.data(), s.size()); }
    // Escapes [s, end) into the output, or up to the first NUL with `to_nul` (keys), and
    // returns where it stopped.
    const std::uint8_t* escaped(const std::uint8_t* s, const std::uint8_t* end, bool to_nul);
    void quoted(const std::uint8_t* s, std::size_t n) {
        put('"');
        escaped(s, s + n, false);
        put('"');
    }
    template <class Int>
    void integer(Int v) {
        char buf[24];
        auto r = std::to_chars(buf, buf + sizeof buf, v);
        append(buf, static_cast<std::size_t>(r.ptr - buf));
    }
    void number_double(double v);
    void oid(const std::uint8_t* p);
    void binary(const std::uint8_t* data, std::size_t n, std::uint8_t subtype);
    void date(std::int64_t ms);
    void regex_options(const std::uint8_t* s, std::size_t n);

    std::string& out_;
    char* p_;
    char* end_;
};

// First byte at or after s that is not printable ASCII to copy as is (quote, backslash,
// control character or non-ASCII), or end. Sixteen bytes at a time with SSE2 (a signed
// compare with 0x20 catches control characters and non-ASCII at once), then eight at a time
// (SWAR: a byte b < 0x80 sets its high bit in b - 0x20 only if b < 0x20, and in (b ^ c) - 1
// only if b == c; borrows only flag bytes after a flagged one), then byte by byte.
const std::uint8_t* skip_plain(const std::uint8_t* s, const std::uint8_t* end) {
#if defined(__SSE2__)
    const __m128i space = _mm_set1_epi8(0x20), quote = _mm_set1_epi8('"'),
                  backslash = _mm_set1_epi8('\\');
    while (end - s >= 16) {
        const __m128i x = _mm_loadu_si128(reinterpret_cast<const __m128i*>(s));
        const __m128i flagged =
            _mm_or_si128(_mm_cmplt_epi8(x, space),
                         _mm_or_si128(_mm_cmpeq_epi8(x, quote), _mm_cmpeq_epi8(x, backslash)));
        const int mask = _mm_movemask_epi8(flagged);
        if (mask != 0) return s + __builtin_ctz(static_cast<unsigned>(mask));
        s += 16;
    }
#endif
    constexpr std::uint64_t ones = 0x0101010101010101, highs = 0x8080808080808080;
    while (end - s >= 8) {
        std::uint64_t w;
        std::memcpy(&w, s, sizeof w);
        const std::uint64_t flagged =
            ((w - 0x20 * ones) | ((w ^ ('"' * ones)) - ones) | ((w ^ ('\\' * ones)) - ones) | w) &
            highs;
        if (flagged != 0) break;
        s += 8;
    }
    while (s < end && byte_class[*s] == 0) ++s;
    return s;
}

const std::uint8_t* writer::escaped(const std::uint8_t* s, const std::uint8_t* const end,
                                    bool to_nul) {
    const std::uint8_t* run = s;  // not yet copied
    for (;;) {
        s = skip_plain(s, end);
        if (s == end) {
            if (to_nul) corrupt("unterminated key");
            break;
        }
        if (*s == 0 && to_nul) {
            append(run, static_cast<std::size_t>(s - run));
            return s;
        }
        const std::uint8_t cls = byte_class[*s];
        if (cls != 1) {
            // Valid UTF-8 is copied as is, as part of the run.
            const std::size_t len = cls == 5 ? 0 : utf8_sequence(s, end, cls);
            if (len == 0) throw bson_json_error("string is not valid UTF-8");
            s += len;
            continue;
        }
        append(run, static_cast<std::size_t>(s - run));
        const std::uint8_t c = *s++;
        run = s;
        switch (c) {
            case '"':
                put("\\\"");
                break;
            case '\\':
                put("\\\\");
                break;
            case '\b':
                put("\\b");
                break;
            case '\f':
                put("\\f");
                break;
            case '\n':
                put("\\n");
                break;
            case '\r':
                put("\\r");
                break;
            case '\t':
                put("\\t");
                break;
            default: {
                const char esc[6] = {'\\', 'u', '0', '0', hex_digits[c >> 4], hex_digits[c & 15]};
                append(esc, sizeof esc);
            }
        }
    }
    append(run, static_cast<std::size_t>(end - run));
    return end;
}

void writer::number_double(double v) {
    if (v != v) return put(R"({"$numberDouble":"NaN"})");
    if (v * 0 != 0) {
        return put(v > 0 ? R"({"$numberDouble":"Infinity"})" : R"({"$numberDouble":"-Infinity"})");
    }
    // Same digits as libbson's "%.20g", then ".0" when that reads as an integer.
    char buf[40];
    char* stop = format_g20_fast(v, buf);
    if (stop == nullptr) {
        // std::to_chars with a precision is specified as printf's %.*g, and is several
        // times faster than snprintf.
        stop = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::general, 20).ptr;
    }
    bool integral = true;
    for (const char* p = buf; p != stop; ++p) {
        if (!((*p >= '0' && *p <= '9') || *p == '-')) {
            integral = false;
            break;
        }
    }
    append(buf, static_cast<std::size_t>(stop - buf));
    if (integral) put(".0");
}

void writer::oid(const std::uint8_t* p) {
    char buf[24];
    for (int i = 0; i < 12; ++i) {
        buf[2 * i] = hex_digits[p[i] >> 4];
        buf[2 * i + 1] = hex_digits[p[i] & 15];
    }
    put(R"({"$oid":")");
    append(buf, sizeof buf);
    put(R"("})");
}

void writer::binary(const std::uint8_t* data, std::size_t n, std::uint8_t subtype) {
    static constexpr char b64[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    put(R"({"$binary":{"base64":")");
    char* o = grab((n + 2) / 3 * 4);
    std::size_t i = 0;
    for (; i + 3 <= n; i += 3) {
        const std::uint32_t w = std::uint32_t{data[i]} << 16 | std::uint32_t{data[i + 1]} << 8 |
                                std::uint32_t{data[i + 2]};
        *o++ = b64[w >> 18];
        *o++ = b64[(w >> 12) & 63];
        *o++ = b64[(w >> 6) & 63];
        *o++ = b64[w & 63];
    }
    if (i < n) {
        const bool two = i + 1 < n;
        const std::uint32_t w =
            std::uint32_t{data[i]} << 16 | (two ? std::uint32_t{data[i + 1]} << 8 : 0);
        *o++ = b64[w >> 18];
        *o++ = b64[(w >> 12) & 63];
        *o++ = two ? b64[(w >> 6) & 63] : '=';
        *o++ = '=';
    }
    put(R"(","subType":")");
    put(hex_digits[subtype >> 4]);
    put(hex_digits[subtype & 15]);
    put(R"("}})");
}

// libbson prints every non-negative date as ISO-8601 UTC (years past 9999 get more digits),
// milliseconds only when non-zero; negative dates as {"$numberLong": "..."}.
void writer::date(std::int64_t ms) {
    if (ms < 0) {
        put(R"({"$date":{"$numberLong":")");
        integer(ms);
        return put(R"("}})");
    }
    const std::int64_t secs = ms / 1000;
    const int millis = static_cast<int>(ms % 1000);
    const std::int64_t days = secs / 86400;
    const int sod = static_cast<int>(secs % 86400);
    // Civil date from a day count, with years starting on 1 March so that the leap day
    // comes last; an era is the 400-year Gregorian cycle of 146097 days.
    const std::int64_t z = days + 719468;
    const std::int64_t era = z / 146097;
    const std::int64_t doe = z - era * 146097;
    const std::int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    const std::int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    const std::int64_t mp = (5 * doy + 2) / 153;
    const int day = static_cast<int>(doy - (153 * mp + 2) / 5 + 1);
    const int month = static_cast<int>(mp < 10 ? mp + 3 : mp - 9);
    const std::int64_t year = yoe + era * 400 + (month <= 2 ? 1 : 0);

    put(R"({"$date":")");
    integer(year);  // always >= 1970 here, so four digits at least
    char buf[24];
    auto two = [](char* p, int v) {
        p[0] = static_cast<char>('0' + v / 10);
        p[1] = static_cast<char>('0' + v % 10);
    };
    buf[0] = '-';
    two(buf + 1, month);
    buf[3] = '-';
    two(buf + 4, day);
    buf[6] = 'T';
    two(buf + 7, sod / 3600);
    buf[9] = ':';
    two(buf + 10, sod / 60 % 60);
    buf[12] = ':';
    two(buf + 13, sod % 60);
    std::size_t n = 15;
    if (millis != 0) {
        buf[n++] = '.';
        buf[n++] = static_cast<char>('0' + millis / 100);
        two(buf + n, millis % 100);
        n += 2;
    }
    buf[n++] = 'Z';
    append(buf, n);
    put(R"("})");
}

// libbson keeps only the flags it knows, once each, in alphabetical order.
void writer::regex_options(const std::uint8_t* s, std::size_t n) {
    static constexpr std::string_view known = "ilmsux";
    bool seen[known.size()] = {};
    for (std::size_t i = 0; i < n; ++i) {
        if (const auto k = known.find(static_cast<char>(s[i])); k != known.npos) seen[k] = true;
    }
    for (std::size_t k = 0; k < known.size(); ++k) {
        if (seen[k]) put(known[k]);
    }
}

// Checked reads of one element's value; `p` is where the value starts, `end` is the
// enclosing document's terminating NUL.
struct span {
    const std::uint8_t* p;
    std::size_t n;
};

// A BSON string: int32 length (including the NUL), bytes, NUL.
// libbson does not check the NUL of the code in a code-with-scope (`check_nul`).
span read_string(const std::uint8_t* p, const std::uint8_t* end, bool check_nul = true) {
    if (end - p < 4) corrupt("truncated string length");
    const std::int32_t len = load_i32(p);
    if (len < 1 || len > end - p - 4) corrupt("bad string length");
    if (check_nul && p[4 + len - 1] != 0) corrupt("string not NUL-terminated");
    return {p + 4, static_cast<std::size_t>(len - 1)};
}

span read_cstring(const std::uint8_t* p, const std::uint8_t* end) {
    const void* nul = std::memchr(p, 0, static_cast<std::size_t>(end - p));
    if (nul == nullptr) corrupt("unterminated cstring");
    return {p, static_cast<std::size_t>(static_cast<const std::uint8_t*>(nul) - p)};
}

// An embedded document: int32 length (whole document), elements, NUL.
std::uint32_t read_document_length(const std::uint8_t* p, const std::uint8_t* end) {
    if (end - p < 5) corrupt("truncated document");
    const std::int32_t len = load_i32(p);
    if (len < 5 || len > end - p) corrupt("bad document length");
    if (p[len - 1] != 0) corrupt("document not NUL-terminated");
    return static_cast<std::uint32_t>(len);
}

void writer::document(const std::uint8_t* doc, std::uint32_t len, bool is_array, int depth,
                      int recursion) {
    if (recursion > max_recursion) corrupt("nesting too deep");
    if (depth > max_depth) return put("{...}");
    const std::uint8_t* p = doc + 4;
    const std::uint8_t* const end = doc + len - 1;  // the terminating NUL
    put(is_array ? '[' : '{');
    bool first = true;
    while (p < end) {
        const std::uint8_t type = *p++;
        if (!first) put(',');
        first = false;
        if (!is_array) {
            put('"');
            p = escaped(p, end, true) + 1;
            put(R"(":)");
        } else {
            // Array keys are not printed, but libbson still refuses invalid UTF-8 in them.
            const std::uint8_t* key = p;
            std::uint8_t high = 0;
            while (p < end && *p != 0) high |= *p++;
            if (p == end) corrupt("unterminated key");
            if ((high & 0x80) != 0 && !valid_utf8(key, static_cast<std::size_t>(p - key))) {
                throw bson_json_error("string is not valid UTF-8");
            }
            ++p;
        }
        auto need = [&](std::ptrdiff_t n) {
            if (end - p < n) corrupt("truncated value");
        };
        switch (type) {
            case BSON_TYPE_DOUBLE: {
                need(8);
                const std::uint64_t bits = load_u64(p);
                double v;
                std::memcpy(&v, &bits, sizeof v);
                number_double(v);
                p += 8;
                break;
            }
            case BSON_TYPE_UTF8: {
                const span s = read_string(p, end);
                quoted(s.p, s.n);
                p = s.p + s.n + 1;
                break;
            }
            case BSON_TYPE_DOCUMENT:
            case BSON_TYPE_ARRAY: {
                const std::uint32_t n = read_document_length(p, end);
                document(p, n, type == BSON_TYPE_ARRAY, depth + 1, recursion + 1);
                p += n;
                break;
            }
            case BSON_TYPE_BINARY: {
                need(5);
                const std::int32_t n = load_i32(p);
                if (n < 0 || n > end - p - 5) corrupt("bad binary length");
                const std::uint8_t subtype = p[4];
                const std::uint8_t* data = p + 5;
                std::size_t data_len = static_cast<std::size_t>(n);
                if (subtype == BSON_SUBTYPE_BINARY_DEPRECATED) {
                    // The old binary subtype repeats the length inside the payload.
                    if (n < 4 || load_i32(data) != n - 4) corrupt("bad old binary length");
                    data += 4;
                    data_len -= 4;
                }
                binary(data, data_len, subtype);
                p += 5 + n;
                break;
            }
            case BSON_TYPE_UNDEFINED:
                put(R"({"$undefined":true})");
                break;
            case BSON_TYPE_OID:
                need(12);
                oid(p);
                p += 12;
                break;
            case BSON_TYPE_BOOL:
                need(1);
                if (*p > 1) corrupt("bool neither 0 nor 1");
                put(*p != 0 ? std::string_view("true") : std::string_view("false"));
                p += 1;
                break;
            case BSON_TYPE_DATE_TIME:
                need(8);
                date(load_i64(p));
                p += 8;
                break;
            case BSON_TYPE_NULL:
                put("null");
                break;
            case BSON_TYPE_REGEX: {
                const span pattern = read_cstring(p, end);
                const span options = read_cstring(pattern.p + pattern.n + 1, end);
                put(R"({"$regularExpression":{"pattern":)");
                quoted(pattern.p, pattern.n);
                put(R"(,"options":")");
                regex_options(options.p, options.n);
                put(R"("}})");
                p = options.p + options.n + 1;
                break;
            }
            case BSON_TYPE_DBPOINTER: {
                const span coll = read_string(p, end);
                p = coll.p + coll.n + 1;
                need(12);
                put(R"({"$dbPointer":{"$ref":)");
                // libbson checks the whole collection name is UTF-8 but prints it as a C
                // string: up to its first NUL.
                const auto* nul = static_cast<const std::uint8_t*>(std::memchr(coll.p, 0, coll.n));
                const std::size_t shown =
                    nul != nullptr ? static_cast<std::size_t>(nul - coll.p) : coll.n;
                if (!valid_utf8(coll.p + shown, coll.n - shown)) {
                    throw bson_json_error("string is not valid UTF-8");
                }
                quoted(coll.p, shown);
                put(R"(,"$id":)");
                oid(p);
                put("}}");
                p += 12;
                break;
            }
            case BSON_TYPE_CODE:
            case BSON_TYPE_SYMBOL: {
                const span s = read_string(p, end);
                put(type == BSON_TYPE_CODE ? R"({"$code":)" : R"({"$symbol":)");
                quoted(s.p, s.n);
                put('}');
                p = s.p + s.n + 1;
                break;
            }
            case BSON_TYPE_CODEWSCOPE: {
                // int32 total length, string, document; the parts must fill it exactly.
                need(4);
                const std::int32_t total = load_i32(p);
                if (total < 14 || total > end - p) corrupt("bad code-with-scope length");
                const std::uint8_t* const cws_end = p + total;
                const span code = read_string(p + 4, cws_end, false);
                const std::uint8_t* scope = code.p + code.n + 1;
                const std::uint32_t n = read_document_length(scope, cws_end);
                if (scope + n != cws_end) corrupt("bad code-with-scope length");
                put(R"({"$code":)");
                quoted(code.p, code.n);
                put(R"(,"$scope":)");
                scope_document(scope, n, recursion + 1);
                put('}');
                p = cws_end;
                break;
            }
            case BSON_TYPE_INT32:
                need(4);
                integer(load_i32(p));
                p += 4;
                break;
            case BSON_TYPE_TIMESTAMP:
                // Stored as increment then seconds, printed seconds first.
                need(8);
                put(R"({"$timestamp":{"t":)");
                integer(load_u32(p + 4));
                put(R"(,"i":)");
                integer(load_u32(p));
                put("}}");
                p += 8;
                break;
            case BSON_TYPE_INT64:
                need(8);
                integer(load_i64(p));
                p += 8;
                break;
            case BSON_TYPE_DECIMAL128: {
                // Rare enough to leave the formatting to libbson.
                need(16);
                bson_decimal128_t dec;
                dec.low = load_u64(p);
                dec.high = load_u64(p + 8);
                char buf[BSON_DECIMAL128_STRING];
                bson_decimal128_to_string(&dec, buf);
                put(R"({"$numberDecimal":")");
                put(buf);
                put(R"("})");
                p += 16;
                break;
            }
            case BSON_TYPE_MINKEY:
                put(R"({"$minKey":1})");
                break;
            case BSON_TYPE_MAXKEY:
                put(R"({"$maxKey":1})");
                break;
            default:
                corrupt("unknown element type");
        }
    }
    put(is_array ? ']' : '}');
}

}  // namespace

void append_relaxed_json(std::string& out, const bson_t& doc) {
    const std::uint8_t* data = bson_get_data(&doc);
    const std::uint32_t len = doc.len;
    if (len < 5 || load_u32(data) != len || data[len - 1] != 0) corrupt("bad document header");
    const std::size_t mark = out.size();
    try {
        writer w(out, len);
        w.scope_document(data, len, 0);
        w.finish();
    } catch (...) {
        out.resize(mark);
        throw;
    }
}

std::string to_relaxed_json(const bson_t& doc) {
    std::string out;  // sized by the writer
    append_relaxed_json(out, doc);
    return out;
}

}  // namespace coroserve
