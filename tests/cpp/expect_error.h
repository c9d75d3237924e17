// Asserting on hfport's typed errors: the exact class (not a parent, not a sibling) and the pieces
// of the message a user needs (the file, the tensor, the expected and the found values).
//
//   EXPECT_TRUE(throws_exactly<OffsetsError>([&] { parse(bytes); }, {"'f.safetensors'", "'w'"}));
#pragma once

#include <gtest/gtest.h>

#include <exception>
#include <initializer_list>
#include <string>
#include <typeinfo>

namespace hfport_test {

template <typename Expected, typename Fn>
::testing::AssertionResult throws_exactly(Fn&& fn,
                                          std::initializer_list<std::string> needles = {}) {
  try {
    fn();
  } catch (const Expected& e) {
    if (typeid(e) != typeid(Expected)) {
      return ::testing::AssertionFailure()
             << "threw " << typeid(e).name() << ", a subclass of the expected "
             << typeid(Expected).name() << ": " << e.what();
    }
    const std::string what = e.what();
    for (const std::string& needle : needles) {
      if (what.find(needle) == std::string::npos) {
        return ::testing::AssertionFailure() << "message lacks \"" << needle << "\": " << what;
      }
    }
    return ::testing::AssertionSuccess() << what;
  } catch (const std::exception& e) {
    return ::testing::AssertionFailure()
           << "threw " << typeid(e).name() << " instead of " << typeid(Expected).name() << ": "
           << e.what();
  } catch (...) {
    return ::testing::AssertionFailure() << "threw a non-std exception";
  }
  return ::testing::AssertionFailure() << "did not throw " << typeid(Expected).name();
}

}  // namespace hfport_test
