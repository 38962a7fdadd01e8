#pragma once
/// The words of a command line joined so that a POSIX shell reads them back as the same words:
/// a word of only safe characters stays as it is, any other is single-quoted (with ' as '\'').

#include <string>
#include <vector>

namespace servesim {

std::string shell_quoted(const std::vector<std::string>& words);

}  // namespace servesim
