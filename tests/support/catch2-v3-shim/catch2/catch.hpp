// Lets the tests, written against Catch2 2.13 (Debian 12), build with Catch2 3 (Ubuntu 24.04,
// which has no 2.x). This directory is on the include path only when CMake found Catch2 3;
// it maps the few v2 names the tests use onto v3.
#pragma once

#include <catch2/catch_all.hpp>
#include <string>

namespace Catch {
inline auto Contains(const std::string& s) {
    return Matchers::ContainsSubstring(s);
}
inline auto Message(const std::string& s) {
    return Matchers::Message(s);
}
}  // namespace Catch
