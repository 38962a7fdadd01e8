#pragma once
/// POSIX shell quoting: a word of only safe characters stays as it is, any other is
/// single-quoted (with ' as '\''), so that a shell reads the words back as given.

#include <string>
#include <vector>

namespace servesim {

std::string shell_quote(const std::string& word);
/// The words quoted and joined by spaces: a command line.
std::string shell_quoted(const std::vector<std::string>& words);

}  // namespace servesim
