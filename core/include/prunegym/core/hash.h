#pragma once
/// 64-bit FNV-1a: the one hash of cache keys, bench run folders, cache checksums and model files.

#include <cstdint>
#include <string>

namespace prunegym {

/// Continues an FNV-1a hash `h` over `size` bytes (start with kFnvOffset).
constexpr uint64_t kFnvOffset = 1469598103934665603ULL;
uint64_t fnv1a(const void* data, size_t size, uint64_t h = kFnvOffset);
inline uint64_t fnv1a(const std::string& text) { return fnv1a(text.data(), text.size()); }
/// 16 lowercase hex digits.
std::string hex64(uint64_t value);
/// FNV-1a of a string, as 16 hex digits.
inline std::string hash_hex(const std::string& text) { return hex64(fnv1a(text)); }
/// FNV-1a of a file's bytes, as 16 hex digits ("" when it cannot be read).
std::string file_hash(const std::string& path);

}  // namespace prunegym
