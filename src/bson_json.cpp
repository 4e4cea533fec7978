// BSON to compact relaxed Extended JSON, written straight from the BSON bytes. The rules
// follow the Extended JSON specification and its BSON corpus (mongodb/specifications,
// source/extended-json and source/bson-corpus); docs/extended-json.md lists our choices and
// where they differ from libbson. tests/unit/bson_json_test.cpp checks both.
#include "bson_json.hpp"

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

// Shortest decimal that reads back as v (std::to_chars), laid out as Python's repr() lays
// it out: positional for 1e-4 <= |v| < 1e16, with ".0" when that reads as an integer (relaxed
// Extended JSON wants a non-integer for every double), else d.dddE+x as the BSON corpus
// writes it ("1.2345678921232E+18"). Returns the end of the text; out needs 32 bytes.
char* format_double(double v, char* out) {
    char sci[32];
    const auto r = std::to_chars(sci, sci + sizeof sci, v, std::chars_format::scientific);
    // sci is [-]d[.ddd]e(+|-)xx
    const char* p = sci;
    char* o = out;
    if (*p == '-') *o++ = *p++;
    char digits[20];
    std::size_t n = 0;
    for (; *p != 'e'; ++p) {
        if (*p != '.') digits[n++] = *p;
    }
    int exp = 0;
    std::from_chars(p + (p[1] == '+' ? 2 : 1), r.ptr, exp);
    if (exp < -4 || exp >= 16) {
        *o++ = digits[0];
        if (n > 1) {
            *o++ = '.';
            std::memcpy(o, digits + 1, n - 1);
            o += n - 1;
        }
        *o++ = 'E';
        *o++ = exp < 0 ? '-' : '+';
        return std::to_chars(o, out + 32, exp < 0 ? -exp : exp).ptr;
    }
    if (exp < 0) {  // 0.000ddd
        *o++ = '0';
        *o++ = '.';
        for (int i = -1; i > exp; --i) *o++ = '0';
        std::memcpy(o, digits, n);
        return o + n;
    }
    const auto int_digits = static_cast<std::size_t>(exp) + 1;
    if (n <= int_digits) {  // integral: digits, zeros, ".0"
        std::memcpy(o, digits, n);
        o += n;
        for (std::size_t i = n; i < int_digits; ++i) *o++ = '0';
        *o++ = '.';
        *o++ = '0';
        return o;
    }
    std::memcpy(o, digits, int_digits);
    o += int_digits;
    *o++ = '.';
    std::memcpy(o, digits + int_digits, n - int_digits);
    return o + (n - int_digits);
}

// The same text as format_double() for 1e-4 <= |v| < 1e15 with at most 17 significant
// digits, found without std::to_chars (about five times its cost): the fewest decimals k such
// that m / 10^k, with m = v * 10^k rounded, is v again. m and 10^k are exact doubles, so the
// division is correctly rounded, as reading the text back is. Returns nullptr to leave v to
// format_double(). tests/unit/bson_json_test.cpp compares the two on many values.
char* format_double_fast(double v, char* out) {
    static constexpr double pow10[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                       1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                       1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};
    const double a = v < 0 ? -v : v;
    if (!(a >= 1e-4 && a < 1e15)) return nullptr;
    int k = 0;
    double m = 0;
    for (;; ++k) {
        if (k > 22) return nullptr;
        // Rounded to the nearest integer (ties to even) by adding and taking away 2^52,
        // which leaves no fraction bits; no libm call.
        const double x = a * pow10[k];
        if (x >= 4503599627370496.0) return nullptr;  // 2^52: m and its neighbours get far apart
        m = (x + 4503599627370496.0) - 4503599627370496.0;
        if (m / pow10[k] == a) break;
    }
    char digits[20];
    char* const d_end =
        std::to_chars(digits, digits + sizeof digits, static_cast<std::uint64_t>(m)).ptr;
    const auto n = static_cast<std::size_t>(d_end - digits);
    char* o = out;
    if (v < 0) *o++ = '-';
    const auto frac = static_cast<std::size_t>(k);
    if (frac == 0) {
        std::memcpy(o, digits, n);
        std::memcpy(o + n, ".0", 2);
        return o + n + 2;
    }
    if (n <= frac) {  // 0.00ddd
        *o++ = '0';
        *o++ = '.';
        for (std::size_t i = n; i < frac; ++i) *o++ = '0';
        std::memcpy(o, digits, n);
        return o + n;
    }
    std::memcpy(o, digits, n - frac);
    o += n - frac;
    *o++ = '.';
    std::memcpy(o, digits + (n - frac), frac);
    return o + frac;
}

// Index (0..16) of the first byte of s[0..16) that does not copy into a JSON string as is:
// a quote, a backslash, a control character or a non-ASCII byte; 16 if there is none.
// SSE2 (baseline on x86-64): a signed compare with 0x20 catches control characters and
// non-ASCII at once. Elsewhere, eight bytes at a time (SWAR): a byte b < 0x80 sets its high
// bit in b - 0x20 only if b < 0x20, and in (b ^ c) - 1 only if b == c; a borrow can only flag
// bytes after a flagged one, so the lowest flag is exact (little-endian loads).
std::size_t first_special(const std::uint8_t* s) {
#if defined(__SSE2__) && !defined(COROSERVE_BSON_JSON_NO_SIMD)
    const __m128i x = _mm_loadu_si128(reinterpret_cast<const __m128i*>(s));
    const __m128i flagged = _mm_or_si128(_mm_cmplt_epi8(x, _mm_set1_epi8(0x20)),
                                         _mm_or_si128(_mm_cmpeq_epi8(x, _mm_set1_epi8('"')),
                                                      _mm_cmpeq_epi8(x, _mm_set1_epi8('\\'))));
    const auto mask = static_cast<unsigned>(_mm_movemask_epi8(flagged));
    return static_cast<std::size_t>(__builtin_ctz(mask | 0x10000u));
#elif defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    constexpr std::uint64_t ones = 0x0101010101010101, highs = 0x8080808080808080;
    for (std::size_t half = 0; half < 16; half += 8) {
        std::uint64_t w;
        std::memcpy(&w, s + half, sizeof w);
        const std::uint64_t flagged =
            ((w - 0x20 * ones) | ((w ^ ('"' * ones)) - ones) | ((w ^ ('\\' * ones)) - ones) | w) &
            highs;
        if (flagged != 0) return half + static_cast<std::size_t>(__builtin_ctzll(flagged)) / 8;
    }
    return 16;
#else
    std::size_t k = 0;
    while (k < 16 && byte_class[s[k]] == 0) ++k;
    return k;
#endif
}

// Checked reads of one element's value; `p` is where the value starts, `end` is the
// enclosing document's terminating NUL.
struct span {
    const std::uint8_t* p;
    std::size_t n;
};

// A BSON string: int32 length (including the NUL), bytes, NUL.
inline span read_string(const std::uint8_t* p, const std::uint8_t* end) {
    if (end - p < 4) corrupt("truncated string length");
    const std::int32_t len = load_i32(p);
    if (len < 1 || len > end - p - 4) corrupt("bad string length");
    if (p[4 + len - 1] != 0) corrupt("string not NUL-terminated");
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

char* put(char* o, std::string_view s) {
    std::memcpy(o, s.data(), s.size());
    return o + s.size();
}

// Writes into a stack buffer appended to the caller's string a chunk at a time:
// std::string has no way (before C++23's resize_and_overwrite) to grow without zero-filling
// what we are about to overwrite, and that memset cost more than these copies. The output
// position is passed along as `o` (a register) rather than kept in a member, which every
// store through a char* would force the compiler to reload.
class writer {
  public:
    // `in_end` is the end of the readable input: 16-byte loads never pass it.
    writer(std::string& out, const std::uint8_t* in_end) : out_(out), in_end_(in_end) {}

    void run(const std::uint8_t* doc, std::uint32_t len) {
        flush(document(room(buf_, element_room), doc, len, false, 0));
    }

  private:
    static constexpr std::size_t buffer_size = 1536;  // under glibc's rep-movsb threshold
    // What one element writes at most, long strings, binary and decimal128 aside: a comma, a
    // key of up to 15 bytes in quotes with its colon (one 16-byte store), and a value.
    static constexpr std::size_t element_room = 96;

    char* flush(char* o) {
        out_.append(buf_, static_cast<std::size_t>(o - buf_));
        return buf_;
    }
    // `o`, or the buffer's start once flushed, with room for n bytes (n <= buffer_size).
    char* room(char* o, std::size_t n) {
        return static_cast<std::size_t>(buf_ + buffer_size - o) < n ? flush(o) : o;
    }

    char* document(char* o, const std::uint8_t* doc, std::uint32_t len, bool is_array, int depth);

    struct escape_result {
        char* o;
        const std::uint8_t* stop;
    };
    // Escapes [s, e) into the output, or up to the first NUL with `key`.
    escape_result escaped(char* o, const std::uint8_t* s, const std::uint8_t* e, bool key);

    // A string value in quotes; needs 18 bytes of room.
    [[gnu::always_inline]] char* quoted(char* o, const std::uint8_t* s, std::size_t n) {
        // Most strings need no escape: 16-byte blocks stored whole and checked, no call, when
        // the input and the buffer have room for the last block.
        const auto out_room = static_cast<std::size_t>(buf_ + buffer_size - o);
        if (static_cast<std::size_t>(in_end_ - s) >= n + 16 && out_room >= n + 18) {
            o[0] = '"';
            std::size_t i = 0;
            for (;; i += 16) {
                std::memcpy(o + 1 + i, s + i, 16);
                const std::size_t k = first_special(s + i);
                if (i + k >= n) {
                    o[1 + n] = '"';
                    return o + n + 2;
                }
                if (k != 16) break;
            }
            o = escaped(o + 1 + i, s + i, s + n, false).o;
        } else {
            *o++ = '"';
            o = escaped(o, s, s + n, false).o;
        }
        o = room(o, element_room);
        *o++ = '"';
        return o;
    }
    // `"key":` for the key at p, NUL-terminated before end; needs 19 bytes of room.
    // Moves p past the NUL.
    char* key(char* o, const std::uint8_t*& p, const std::uint8_t* end) {
        if (in_end_ - p >= 16) {
            std::memcpy(o + 1, p, 16);
            const std::size_t k = first_special(p);
            if (k < 16 && p[k] == 0 && static_cast<std::ptrdiff_t>(k) < end - p) {
                o[0] = '"';
                std::memcpy(o + 1 + k, R"(":)", 2);
                p += k + 1;
                return o + k + 3;
            }
        }
        *o++ = '"';
        const escape_result r = escaped(o, p, end, true);
        p = r.stop + 1;
        o = room(r.o, element_room);
        return put(o, R"(":)");
    }
    template <class Int>
    static char* integer(char* o, Int v) {
        return std::to_chars(o, o + 24, v).ptr;
    }
    static char* number_double(char* o, double v);
    static char* oid(char* o, const std::uint8_t* p);
    static char* date(char* o, std::int64_t ms);
    char* binary(char* o, const std::uint8_t* data, std::size_t n, std::uint8_t subtype);

    std::string& out_;
    const std::uint8_t* const in_end_;
    char buf_[buffer_size];
};

writer::escape_result writer::escaped(char* o, const std::uint8_t* s, const std::uint8_t* const e,
                                      bool key) {
    for (;;) {
        o = room(o, 16 + 6);  // a block, then one escape
        std::size_t k;        // clean bytes at s, copied already
        if (in_end_ - s >= 16) {
            // Blocks of 16 stored whole and kept up to the first special byte.
            char* const last = buf_ + buffer_size - (16 + 6);
            for (;;) {
                std::memcpy(o, s, 16);
                k = first_special(s);
                const auto left = static_cast<std::size_t>(e - s);
                if (k >= left) {
                    if (key) corrupt("unterminated key");
                    return {o + left, e};
                }
                o += k;
                s += k;
                if (k != 16 || o > last || in_end_ - s < 16) break;
            }
            if (k == 16) continue;  // out of room, or near the end of the input
        } else {
            const auto avail = static_cast<std::size_t>(in_end_ - s);
            k = 0;
            while (k < avail && byte_class[s[k]] == 0) {
                o[k] = static_cast<char>(s[k]);
                ++k;
            }
            const auto left = static_cast<std::size_t>(e - s);
            if (k >= left) {
                if (key) corrupt("unterminated key");
                return {o + left, e};
            }
            o += k;
            s += k;
        }
        // *s is a quote, a backslash, a control character or non-ASCII.
        const std::uint8_t c = *s;
        if (c == 0 && key) return {o, s};
        const std::uint8_t cls = byte_class[c];
        if (cls != 1) {
            // Valid UTF-8 is copied as is.
            const std::size_t len = cls == 5 ? 0 : utf8_sequence(s, e, cls);
            if (len == 0) throw bson_json_error("string is not valid UTF-8");
            std::memcpy(o, s, len);
            o += len;
            s += len;
            continue;
        }
        ++s;
        o[0] = '\\';
        switch (c) {
            case '"':
            case '\\':
                o[1] = static_cast<char>(c);
                o += 2;
                break;
            case '\b':
                o[1] = 'b';
                o += 2;
                break;
            case '\f':
                o[1] = 'f';
                o += 2;
                break;
            case '\n':
                o[1] = 'n';
                o += 2;
                break;
            case '\r':
                o[1] = 'r';
                o += 2;
                break;
            case '\t':
                o[1] = 't';
                o += 2;
                break;
            default:
                o[1] = 'u';
                o[2] = '0';
                o[3] = '0';
                o[4] = hex_digits[c >> 4];
                o[5] = hex_digits[c & 15];
                o += 6;
        }
    }
}

char* writer::number_double(char* o, double v) {
    if (v != v) return put(o, R"({"$numberDouble":"NaN"})");
    if (v * 0 != 0) {
        return put(o,
                   v > 0 ? R"({"$numberDouble":"Infinity"})" : R"({"$numberDouble":"-Infinity"})");
    }
    char* const fast = format_double_fast(v, o);
    return fast != nullptr ? fast : format_double(v, o);
}

char* writer::oid(char* o, const std::uint8_t* p) {
    o = put(o, R"({"$oid":")");
    for (int i = 0; i < 12; ++i) {
        o[2 * i] = hex_digits[p[i] >> 4];
        o[2 * i + 1] = hex_digits[p[i] & 15];
    }
    return put(o + 24, R"("})");
}

char* writer::binary(char* o, const std::uint8_t* data, std::size_t n, std::uint8_t subtype) {
    static constexpr char b64[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    o = put(o, R"({"$binary":{"base64":")");
    std::size_t i = 0;
    for (; i + 3 <= n; i += 3) {
        o = room(o, 4);
        const std::uint32_t w = std::uint32_t{data[i]} << 16 | std::uint32_t{data[i + 1]} << 8 |
                                std::uint32_t{data[i + 2]};
        o[0] = b64[w >> 18];
        o[1] = b64[(w >> 12) & 63];
        o[2] = b64[(w >> 6) & 63];
        o[3] = b64[w & 63];
        o += 4;
    }
    o = room(o, element_room);
    if (i < n) {
        const bool two = i + 1 < n;
        const std::uint32_t w =
            std::uint32_t{data[i]} << 16 | (two ? std::uint32_t{data[i + 1]} << 8 : 0);
        o[0] = b64[w >> 18];
        o[1] = b64[(w >> 12) & 63];
        o[2] = two ? b64[(w >> 6) & 63] : '=';
        o[3] = '=';
        o += 4;
    }
    o = put(o, R"(","subType":")");
    *o++ = hex_digits[subtype >> 4];
    *o++ = hex_digits[subtype & 15];
    return put(o, R"("}})");
}

// ISO-8601 UTC for years 1970 to 9999 (milliseconds only when non-zero), as the
// specification's relaxed format says; {"$numberLong": "..."} outside that range.
char* writer::date(char* o, std::int64_t ms) {
    constexpr std::int64_t year_10000 = 253402300800000;  // 10000-01-01T00:00:00Z
    if (ms < 0 || ms >= year_10000) {
        o = put(o, R"({"$date":{"$numberLong":")");
        o = integer(o, ms);
        return put(o, R"("}})");
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
    const int year = static_cast<int>(yoe + era * 400 + (month <= 2 ? 1 : 0));

    o = put(o, R"({"$date":")");
    auto two = [](char* at, int v) {
        at[0] = static_cast<char>('0' + v / 10);
        at[1] = static_cast<char>('0' + v % 10);
    };
    two(o, year / 100);
    two(o + 2, year % 100);
    o[4] = '-';
    two(o + 5, month);
    o[7] = '-';
    two(o + 8, day);
    o[10] = 'T';
    two(o + 11, sod / 3600);
    o[13] = ':';
    two(o + 14, sod / 60 % 60);
    o[16] = ':';
    two(o + 17, sod % 60);
    o += 19;
    if (millis != 0) {
        o[0] = '.';
        o[1] = static_cast<char>('0' + millis / 100);
        two(o + 2, millis % 100);
        o += 4;
    }
    return put(o, R"(Z"})");
}

// Only the flags the specification knows, once each, in alphabetical order.
char* regex_options(char* o, const std::uint8_t* s, std::size_t n) {
    static constexpr std::string_view known = "ilmsux";
    bool seen[known.size()] = {};
    for (std::size_t i = 0; i < n; ++i) {
        if (const auto k = known.find(static_cast<char>(s[i])); k != known.npos) seen[k] = true;
    }
    for (std::size_t k = 0; k < known.size(); ++k) {
        if (seen[k]) *o++ = known[k];
    }
    return o;
}

// Writes the document at `o`, which has room for its first byte, and returns the end, which
// has room for one byte more.
char* writer::document(char* o, const std::uint8_t* doc, std::uint32_t len, bool is_array,
                       int depth) {
    if (depth > max_json_depth) {
        throw bson_json_error("documents nested deeper than " + std::to_string(max_json_depth) +
                              " levels");
    }
    const std::uint8_t* p = doc + 4;
    const std::uint8_t* const end = doc + len - 1;  // the terminating NUL
    *o++ = is_array ? '[' : '{';
    bool first = true;
    while (p < end) {
        o = room(o, element_room);
        const std::uint8_t type = *p++;
        if (!first) *o++ = ',';
        first = false;
        if (!is_array) {
            o = key(o, p, end);
        } else {
            // Array keys are not printed, but must still be UTF-8.
            const std::uint8_t* k = p;
            std::uint8_t high = 0;
            while (p < end && *p != 0) high |= *p++;
            if (p == end) corrupt("unterminated key");
            if ((high & 0x80) != 0 && !valid_utf8(k, static_cast<std::size_t>(p - k))) {
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
                o = number_double(o, v);
                p += 8;
                break;
            }
            case BSON_TYPE_UTF8: {
                const span s = read_string(p, end);
                o = quoted(o, s.p, s.n);
                p = s.p + s.n + 1;
                break;
            }
            case BSON_TYPE_DOCUMENT:
            case BSON_TYPE_ARRAY: {
                const std::uint32_t n = read_document_length(p, end);
                o = document(o, p, n, type == BSON_TYPE_ARRAY, depth + 1);
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
                o = binary(o, data, data_len, subtype);
                p += 5 + n;
                break;
            }
            case BSON_TYPE_UNDEFINED:
                o = put(o, R"({"$undefined":true})");
                break;
            case BSON_TYPE_OID:
                need(12);
                o = oid(o, p);
                p += 12;
                break;
            case BSON_TYPE_BOOL:
                need(1);
                if (*p > 1) corrupt("bool neither 0 nor 1");
                o = put(o, *p != 0 ? std::string_view("true") : std::string_view("false"));
                p += 1;
                break;
            case BSON_TYPE_DATE_TIME:
                need(8);
                o = date(o, load_i64(p));
                p += 8;
                break;
            case BSON_TYPE_NULL:
                o = put(o, "null");
                break;
            case BSON_TYPE_REGEX: {
                const span pattern = read_cstring(p, end);
                const span options = read_cstring(pattern.p + pattern.n + 1, end);
                o = put(o, R"({"$regularExpression":{"pattern":)");
                o = quoted(room(o, element_room), pattern.p, pattern.n);
                o = put(room(o, element_room), R"(,"options":")");
                o = regex_options(o, options.p, options.n);
                o = put(o, R"("}})");
                p = options.p + options.n + 1;
                break;
            }
            case BSON_TYPE_DBPOINTER: {
                const span coll = read_string(p, end);
                p = coll.p + coll.n + 1;
                need(12);
                // The whole BSON string, a NUL included (as \u0000); libbson 1.23 stops the
                // name at a NUL, 1.30 stops its whole output there.
                o = put(o, R"({"$dbPointer":{"$ref":)");
                o = quoted(room(o, element_room), coll.p, coll.n);
                o = put(room(o, element_room), R"(,"$id":)");
                o = oid(o, p);
                o = put(o, "}}");
                p += 12;
                break;
            }
            case BSON_TYPE_CODE:
            case BSON_TYPE_SYMBOL: {
                const span s = read_string(p, end);
                o = put(o, type == BSON_TYPE_CODE ? R"({"$code":)" : R"({"$symbol":)");
                o = quoted(room(o, element_room), s.p, s.n);
                *o++ = '}';
                p = s.p + s.n + 1;
                break;
            }
            case BSON_TYPE_CODEWSCOPE: {
                // int32 total length, string, document; the parts must fill it exactly.
                need(4);
                const std::int32_t total = load_i32(p);
                if (total < 14 || total > end - p) corrupt("bad code-with-scope length");
                const std::uint8_t* const cws_end = p + total;
                const span code = read_string(p + 4, cws_end);
                const std::uint8_t* scope = code.p + code.n + 1;
                const std::uint32_t n = read_document_length(scope, cws_end);
                if (scope + n != cws_end) corrupt("bad code-with-scope length");
                o = put(o, R"({"$code":)");
                o = quoted(room(o, element_room), code.p, code.n);
                o = put(room(o, element_room), R"(,"$scope":)");
                // The scope is a document one level below the one that holds it.
                o = document(o, scope, n, false, depth + 1);
                *o++ = '}';
                p = cws_end;
                break;
            }
            case BSON_TYPE_INT32:
                need(4);
                o = integer(o, load_i32(p));
                p += 4;
                break;
            case BSON_TYPE_TIMESTAMP:
                // Stored as increment then seconds, printed seconds first.
                need(8);
                o = put(o, R"({"$timestamp":{"t":)");
                o = integer(o, load_u32(p + 4));
                o = put(o, R"(,"i":)");
                o = integer(o, load_u32(p));
                o = put(o, "}}");
                p += 8;
                break;
            case BSON_TYPE_INT64:
                need(8);
                o = integer(o, load_i64(p));
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
                o = put(o, R"({"$numberDecimal":")");
                o = put(o, buf);
                o = put(o, R"("})");
                p += 16;
                break;
            }
            case BSON_TYPE_MINKEY:
                o = put(o, R"({"$minKey":1})");
                break;
            case BSON_TYPE_MAXKEY:
                o = put(o, R"({"$maxKey":1})");
                break;
            default:
                corrupt("unknown element type");
        }
    }
    o = room(o, element_room);
    *o++ = is_array ? ']' : '}';
    return o;
}

}  // namespace

void append_relaxed_json(std::string& out, const bson_t& doc) {
    const std::uint8_t* data = bson_get_data(&doc);
    const std::uint32_t len = doc.len;
    if (len < 5 || load_u32(data) != len || data[len - 1] != 0) corrupt("bad document header");
    const std::size_t mark = out.size();
    try {
        writer w(out, data + len);
        w.run(data, len);
    } catch (...) {
        out.resize(mark);
        throw;
    }
}

std::string to_relaxed_json(const bson_t& doc) {
    std::string out;
    out.reserve(doc.len + doc.len / 4);
    append_relaxed_json(out, doc);
    return out;
}

}  // namespace coroserve
