// Errors raised for bad input: files, flags, requests. The message names what is wrong (the file, the tensor,
// what was expected and what was found); callers print it and exit with a non-zero status.
#pragma once
#include <stdexcept>
#include <string>

namespace ossrun {

// A checkpoint, config or other input file that cannot be used as it is.
class InputError : public std::runtime_error {
 public:
  explicit InputError(const std::string& what) : std::runtime_error(what) {}
};

}  // namespace ossrun
