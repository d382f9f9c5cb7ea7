#include "core/command_line.h"

#include "absl/flags/commandlineflag.h"
#include "absl/flags/reflection.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

namespace frikort::core {

std::string PrecheckFlags(int argc, char** argv, bool allow_positional) {
  for (int i = 1; i < argc; ++i) {
    absl::string_view arg = argv[i];
    if (arg == "--") return "";
    if (arg.size() < 2 || arg[0] != '-') {
      if (allow_positional) continue;
      return absl::StrCat("unexpected argument '", arg, "'");
    }
    arg.remove_prefix(arg[1] == '-' ? 2 : 1);
    absl::string_view name = arg;
    absl::string_view value;
    bool has_value = false;
    if (size_t eq = arg.find('='); eq != absl::string_view::npos) {
      name = arg.substr(0, eq);
      value = arg.substr(eq + 1);
      has_value = true;
    }
    // Abseil's own flags (usage, flag files, environment) are left to Abseil.
    for (absl::string_view own :
         {"help", "helpfull", "helpshort", "helppackage", "helpon", "helpmatch", "version",
          "only_check_args", "flagfile", "fromenv", "tryfromenv", "undefok"}) {
      if (name == own) return "";
    }
    absl::CommandLineFlag* flag = absl::FindCommandLineFlag(name);
    bool negated = false;
    if (flag == nullptr && absl::StartsWith(name, "no")) {
      flag = absl::FindCommandLineFlag(name.substr(2));
      if (flag != nullptr && !flag->IsOfType<bool>()) flag = nullptr;
      negated = flag != nullptr;
    }
    if (flag == nullptr) return absl::StrCat("unknown flag --", name);
    if (negated) {
      if (has_value) return absl::StrCat("--", name, " takes no value");
      continue;
    }
    if (!has_value) {
      if (flag->IsOfType<bool>()) continue;
      if (i + 1 >= argc) return absl::StrCat("missing value for flag --", name);
      value = argv[++i];
    }
    std::string error;
    if (!flag->ParseFrom(value, &error)) {
      return error.empty() ? absl::StrCat("illegal value '", value, "' for flag --", name) : error;
    }
  }
  return "";
}

}  // namespace frikort::core
