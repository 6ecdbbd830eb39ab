// Byte sizes on the command line, /proc/meminfo parsing and the default budgets.
#include <doctest/doctest.h>

#include <string>

#include "offload/byte_size.h"
#include "offload/host_memory.h"
#include "src/model/error.h"

using namespace ossrun;
using namespace ossrun::offload;

namespace {

void expect_size_error(const std::string& text, const std::string& fragment) {
  try {
    parse_byte_size(text, "--vram");
    FAIL("accepted \"" << text << "\"");
  } catch (const InputError& e) {
    const std::string msg = e.what();
    INFO("message: " << msg);
    CHECK(msg.find("--vram") != std::string::npos);
    CHECK(msg.find(fragment) != std::string::npos);
  }
}

}  // namespace

TEST_CASE("offload byte size: suffixes are binary multiples, with or without B / iB") {
  CHECK(parse_byte_size("0", "x") == 0);
  CHECK(parse_byte_size("1234", "x") == 1234);
  CHECK(parse_byte_size("1234B", "x") == 1234);
  CHECK(parse_byte_size("4K", "x") == 4096);
  CHECK(parse_byte_size("4k", "x") == 4096);
  CHECK(parse_byte_size("512M", "x") == 512ull << 20);
  CHECK(parse_byte_size("6G", "x") == 6ull << 30);
  CHECK(parse_byte_size("6GB", "x") == 6ull << 30);
  CHECK(parse_byte_size("6GiB", "x") == 6ull << 30);
  CHECK(parse_byte_size("6gib", "x") == 6ull << 30);
  CHECK(parse_byte_size("2T", "x") == 2ull << 40);
  CHECK(parse_byte_size("1.5G", "x") == (3ull << 30) / 2);
  CHECK(parse_byte_size("0.5K", "x") == 512);
}

TEST_CASE("offload byte size: bad sizes are errors that name the flag and the problem") {
  expect_size_error("", "empty");
  expect_size_error("-1G", "negative");
  expect_size_error("G", "no number");
  expect_size_error(".", "no number");
  expect_size_error("1.2.3G", "no number");
  expect_size_error("6X", "unknown unit");
  expect_size_error("6 G", "unknown unit");
  expect_size_error("6Gb ", "unknown unit");
  expect_size_error("0.1K", "whole number of bytes");
  expect_size_error("1.5", "whole number of bytes");
  expect_size_error("9000000T", "more than 8 EiB");
}

TEST_CASE("offload byte size: formatting in binary units") {
  CHECK(format_bytes(0) == "0 B");
  CHECK(format_bytes(1023) == "1023 B");
  CHECK(format_bytes(1024) == "1.00 KiB");
  CHECK(format_bytes(6ull << 30) == "6.00 GiB");
  CHECK(format_bytes(13236480) == "12.6 MiB");
  CHECK(format_bytes(300ull << 30) == "300 GiB");
}

TEST_CASE("offload host memory: /proc/meminfo parsing and the default budgets") {
  const std::string text =
      "MemTotal:       65536000 kB\nMemFree:         1000000 kB\nMemAvailable:   40000000 kB\nBuffers:  12 kB\n";
  auto m = parse_meminfo(text);
  REQUIRE(m.has_value());
  CHECK(m->total_bytes == 65536000ull * 1024);
  CHECK(m->available_bytes == 40000000ull * 1024);
  // Headroom: max(2 GiB, total / 8) = 8000000 kB here.
  CHECK(default_ram_budget(*m) == (40000000ull - 8192000ull) * 1024);
  CHECK(default_ram_budget(HostMemory{4ull << 30, 1ull << 30}) == 0);

  CHECK_FALSE(parse_meminfo("MemTotal: 100 kB\n").has_value());              // no MemAvailable (old kernels)
  CHECK_FALSE(parse_meminfo("MemTotal: x kB\nMemAvailable: 5 kB\n").has_value());
  CHECK_FALSE(parse_meminfo("MemTotal: 100 MB\nMemAvailable: 5 kB\n").has_value());
  CHECK_FALSE(parse_meminfo("").has_value());

  const HostMemory here = read_host_memory();
  CHECK(here.total_bytes > 0);
  CHECK(here.available_bytes <= here.total_bytes);

  // VRAM headroom: max(512 MiB, total / 32).
  CHECK(default_vram_budget(8ull << 30, 8ull << 30) == (8ull << 30) - (512ull << 20));
  CHECK(default_vram_budget(70ull << 30, 80ull << 30) == (70ull << 30) - (80ull << 30) / 32);
  CHECK(default_vram_budget(100ull << 20, 8ull << 30) == 0);
}
