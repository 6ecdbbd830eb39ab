// Function tools as harmony writes them in the developer message (HAR-E `template_tools_section` and
// `json_schema_to_typescript`): a "namespace NAME { ... }" of "type f = (_: {...}) => any;" declarations whose
// argument object is the tool's JSON schema turned into a TypeScript-like type, with descriptions, titles,
// examples and defaults as // comments. Properties keep the order written (harmony's serde_json preserves it).
#include <algorithm>
#include <nlohmann/json.hpp>
#include <set>

#include "src/model/error.h"
#include "src/tokenizer/harmony.h"

namespace ossrun {
namespace {

using Json = nlohmann::ordered_json;

bool is_enum(const Json& schema) {
  auto it = schema.find("enum");
  return it != schema.end() && it->is_array() && !it->empty();
}

bool has_string(const Json& schema, const char* key) {
  auto it = schema.find(key);
  return it != schema.end() && it->is_string();
}

const std::string& string_at(const Json& schema, const char* key) { return schema.at(key).get_ref<const std::string&>(); }

bool is_nullable(const Json& schema) {
  auto it = schema.find("nullable");
  return it != schema.end() && it->is_boolean() && it->get<bool>();
}

// A default value as a comment: a string outside an enum is quoted, an enum's string is bare, anything else is
// compact JSON (harmony's property rendering).
std::string default_text(const Json& schema, const Json& value) {
  if (value.is_string()) {
    const std::string& s = value.get_ref<const std::string&>();
    if (is_enum(schema)) return s;
    std::string out = "\"";
    out += s;
    out += '"';
    return out;
  }
  return value.dump();
}

// The same for the variants of a top-level oneOf, where harmony writes an enum's string as JSON (quoted, escaped).
std::string variant_default_text(const Json& schema, const Json& value) {
  if (!value.is_string() || is_enum(schema)) return value.dump();
  std::string out = "\"";
  out += value.get_ref<const std::string&>();
  out += '"';
  return out;
}

std::string to_typescript(const Json& schema, const std::string& indent);

// " | null" appended for a nullable schema whose type does not already say null.
std::string with_nullable(const Json& schema, std::string type) {
  if (is_nullable(schema) && type.find("null") == std::string::npos) type += " | null";
  return type;
}

// A top-level oneOf: each variant on its own line after " | ", with its description and default as a comment.
std::string one_of_variants(const Json& variants, const std::string& indent) {
  std::string out;
  for (const Json& v : variants) {
    out += "\n" + indent + " | " + with_nullable(v, to_typescript(v, indent + "   "));
    std::vector<std::string> comments;
    if (has_string(v, "description")) comments.push_back(string_at(v, "description"));
    if (v.contains("default")) comments.push_back("default: " + variant_default_text(v, v.at("default")));
    if (!comments.empty()) {
      out += " //";
      for (const auto& c : comments) out += " " + c;
    }
  }
  return out;
}

// A property whose schema is a oneOf: the property's own description (unless the first variant repeats it) and
// default above the name, then one " | variant" line each.
std::string one_of_property(const std::string& key, bool required, const Json& prop, const std::string& indent) {
  std::string out;
  const Json& variants = prop.at("oneOf");
  const bool has_desc = has_string(prop, "description");
  const std::string desc = has_desc ? string_at(prop, "description") : "";
  bool first_repeats = has_desc && !variants.empty() && has_string(variants[0], "description") &&
                       string_at(variants[0], "description") == desc;
  bool desc_above = has_desc && !first_repeats;
  if (desc_above) out += indent + "// " + desc + "\n";
  if (prop.contains("default")) out += indent + "// default: " + default_text(prop, prop.at("default")) + "\n";
  out += indent + key + (required ? "" : "?") + ":\n";
  for (size_t i = 0; i < variants.size(); ++i) {
    const Json& v = variants[i];
    out += indent + " | " + with_nullable(v, to_typescript(v, indent + "   "));
    std::vector<std::string> comments;
    if (!(i == 0 && desc_above) && has_string(v, "description") && !(has_desc && string_at(v, "description") == desc))
      comments.push_back(string_at(v, "description"));
    if (v.contains("default")) comments.push_back("default: " + default_text(v, v.at("default")));
    if (!comments.empty()) {
      out += " //";
      for (const auto& c : comments) out += " " + c;
    }
    out += "\n";
  }
  return out + indent + ",\n";
}

std::string object_type(const Json& schema, const std::string& indent) {
  std::string out;
  if (has_string(schema, "description")) out += indent + "// " + string_at(schema, "description") + "\n";
  out += "{\n";
  auto props = schema.find("properties");
  if (props != schema.end() && props->is_object()) {
    std::set<std::string> required;
    if (auto req = schema.find("required"); req != schema.end() && req->is_array())
      for (const Json& r : *req)
        if (r.is_string()) required.insert(r.get<std::string>());
    for (auto it = props->begin(); it != props->end(); ++it) {
      const std::string& key = it.key();
      const Json& prop = it.value();
      const bool is_required = required.count(key) != 0;
      if (has_string(prop, "title")) out += indent + "// " + string_at(prop, "title") + "\n" + indent + "//\n";
      const bool one_of = prop.contains("oneOf");
      if (!one_of && has_string(prop, "description")) out += indent + "// " + string_at(prop, "description") + "\n";
      if (auto ex = prop.find("examples"); ex != prop.end() && ex->is_array() && !ex->empty()) {
        out += indent + "// Examples:\n";
        for (const Json& e : *ex)
          if (e.is_string()) out += indent + "// - \"" + e.get<std::string>() + "\"\n";
      }
      if (one_of && prop.at("oneOf").is_array()) {
        out += one_of_property(key, is_required, prop, indent);
        continue;
      }
      out += indent + key + (is_required ? "" : "?") + ": " + with_nullable(prop, to_typescript(prop, indent + "    ")) +
             ",";
      if (!one_of && prop.contains("default")) out += " // default: " + default_text(prop, prop.at("default"));
      out += "\n";
    }
  }
  return out + indent + "}";
}

std::string to_typescript(const Json& schema, const std::string& indent) {
  if (!schema.is_object()) return "any";
  if (auto one_of = schema.find("oneOf"); one_of != schema.end() && one_of->is_array())
    return one_of_variants(*one_of, indent);
  auto type = schema.find("type");
  if (type != schema.end() && type->is_array()) {
    std::string out;
    for (const Json& t : *type) {
      if (!t.is_string()) continue;
      std::string name = t.get<std::string>() == "integer" ? "number" : t.get<std::string>();
      out += (out.empty() ? "" : " | ") + name;
    }
    if (!out.empty()) return out;
  }
  if (type == schema.end() || !type->is_string()) return "any";
  const std::string& t = type->get_ref<const std::string&>();
  if (t == "object") return object_type(schema, indent);
  if (t == "string") {
    std::string out;
    if (is_enum(schema))
      for (const Json& v : schema.at("enum"))
        if (v.is_string()) out += (out.empty() ? "\"" : " | \"") + v.get<std::string>() + "\"";
    return out.empty() ? "string" : out;
  }
  if (t == "number" || t == "integer") return "number";
  if (t == "boolean") return "boolean";
  if (t == "array") {
    auto items = schema.find("items");
    return items == schema.end() ? "Array<any>" : to_typescript(*items, indent) + "[]";
  }
  return "any";
}

// Rust's str::lines(): split at "\n", drop a "\r" before it, no empty last line for a trailing "\n".
std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    std::string line = text.substr(start, end - start);
    if (!line.empty() && line.back() == '\r') line.pop_back();
    lines.push_back(line);
    start = end + 1;
  }
  return lines;
}

std::string tool_declaration(const ToolDescription& tool, const std::string& ns) {
  if (tool.parameters_json.empty()) return "type " + tool.name + " = () => any;\n";
  Json schema;
  try {
    schema = Json::parse(tool.parameters_json);
  } catch (const Json::parse_error& e) {
    throw InputError("tool " + ns + "." + tool.name + ": its parameters are not valid JSON: " + e.what());
  }
  if (!schema.is_object())
    throw InputError("tool " + ns + "." + tool.name + ": its parameters must be a JSON schema object, found " +
                     schema.dump());
  return "type " + tool.name + " = (_: " + to_typescript(schema, "") + ") => any;\n";
}

}  // namespace

std::string render_tools_section(const std::vector<ToolNamespace>& namespaces) {
  std::vector<const ToolNamespace*> sorted;
  for (const auto& ns : namespaces) sorted.push_back(&ns);
  std::stable_sort(sorted.begin(), sorted.end(), [](auto* a, auto* b) { return a->name < b->name; });
  std::string out = "# Tools";
  for (const ToolNamespace* ns : sorted) {
    std::vector<std::string> parts = {"## " + ns->name + "\n"};
    for (const std::string& line : lines_of(ns->description)) parts.push_back((ns->tools.empty() ? "" : "// ") + line);
    if (!ns->tools.empty()) {
      parts.push_back("namespace " + ns->name + " {\n");
      for (const ToolDescription& tool : ns->tools) {
        for (const std::string& line : lines_of(tool.description)) parts.push_back("// " + line);
        parts.push_back(tool_declaration(tool, ns->name));
      }
      parts.push_back("} // namespace " + ns->name);
    }
    out += "\n\n";
    for (size_t i = 0; i < parts.size(); ++i) out += (i ? "\n" : "") + parts[i];
  }
  return out;
}

}  // namespace ossrun
