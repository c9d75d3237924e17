// The expression parser (recursive descent, Python's precedence) and evaluator. See expression.h.
#include "mapping/expression.h"

#include <cctype>
#include <cmath>
#include <limits>

#include "core/error.h"

namespace hfport {

using json = nlohmann::json;

struct ExpressionNode {
  enum class Kind { Literal, Name, Unary, Binary, Index, Call };
  Kind kind = Kind::Literal;
  json literal;                                            // Literal
  std::string name;                                        // Name (dotted path), Call, operator
  std::vector<std::shared_ptr<const ExpressionNode>> args;  // operands / call arguments
};

namespace {

using Node = ExpressionNode;
using NodePtr = std::shared_ptr<const Node>;

struct Token {
  enum class Kind { Int, Float, String, Name, Op, End };
  Kind kind;
  std::string text;
  size_t pos;
};

std::vector<Token> tokenize(const std::string& text, const std::string& where) {
  std::vector<Token> tokens;
  size_t i = 0;
  auto fail = [&](const std::string& why) {
    throw SpecError(where + ": expression '" + text + "': " + why + " at column " +
                    std::to_string(i + 1));
  };
  while (i < text.size()) {
    const char c = text[i];
    if (std::isspace(static_cast<unsigned char>(c))) {
      ++i;
    } else if (std::isdigit(static_cast<unsigned char>(c))) {
      size_t j = i;
      bool is_float = false;
      while (j < text.size() && (std::isdigit(static_cast<unsigned char>(text[j])) || text[j] == '.')) {
        is_float |= text[j] == '.';
        ++j;
      }
      tokens.push_back({is_float ? Token::Kind::Float : Token::Kind::Int, text.substr(i, j - i), i});
      i = j;
    } else if (std::isalpha(static_cast<unsigned char>(c)) || c == '_') {
      size_t j = i;
      // A dotted path (text_config.hidden_size) is one name token.
      while (j < text.size() && (std::isalnum(static_cast<unsigned char>(text[j])) ||
                                 text[j] == '_' || text[j] == '.')) {
        ++j;
      }
      tokens.push_back({Token::Kind::Name, text.substr(i, j - i), i});
      i = j;
    } else if (c == '\'') {
      const size_t close = text.find('\'', i + 1);
      if (close == std::string::npos) fail("unterminated string");
      tokens.push_back({Token::Kind::String, text.substr(i + 1, close - i - 1), i});
      i = close + 1;
    } else {
      static const char* const two_char_ops[] = {"//", "**", "==", "!=", "<=", ">="};
      std::string op(1, c);
      for (const char* two : two_char_ops) {
        if (text.compare(i, 2, two) == 0) op = two;
      }
      if (op.size() == 1 && std::string("+-*/%()[],<>").find(c) == std::string::npos) {
        fail(std::string("unexpected character '") + c + "'");
      }
      tokens.push_back({Token::Kind::Op, op, i});
      i += op.size();
    }
  }
  // Expressions in specs are a few dozen tokens. The bound keeps every tree the parser can build
  // shallow enough to evaluate and free by recursion: a chain of 10,000 "+" is one level of
  // parser recursion but a tree 10,000 deep.
  constexpr size_t kMaxTokens = 1000;
  if (tokens.size() > kMaxTokens) {
    throw SpecError(where + ": expression of " + std::to_string(tokens.size()) + " tokens; at "
                    "most " + std::to_string(kMaxTokens) + " are allowed");
  }
  tokens.push_back({Token::Kind::End, "", text.size()});
  return tokens;
}

class Parser {
 public:
  Parser(const std::string& text, const std::string& where)
      : text_(text), where_(where), tokens_(tokenize(text, where)) {}

  NodePtr parse_all(std::set<std::string>& fields) {
    fields_ = &fields;
    NodePtr root = parse_or();
    if (peek().kind != Token::Kind::End) fail("unexpected '" + peek().text + "'");
    return root;
  }

 private:
  const Token& peek() const { return tokens_[pos_]; }
  bool accept_op(const std::string& op) {
    if (peek().kind == Token::Kind::Op && peek().text == op) { ++pos_; return true; }
    return false;
  }
  bool accept_word(const std::string& word) {
    if (peek().kind == Token::Kind::Name && peek().text == word) { ++pos_; return true; }
    return false;
  }
  [[noreturn]] void fail(const std::string& why) const {
    throw SpecError(where_ + ": expression '" + text_ + "': " + why + " at column " +
                    std::to_string(peek().pos + 1));
  }
  static NodePtr make(Node::Kind kind, std::string name, std::vector<NodePtr> args) {
    auto node = std::make_shared<Node>();
    node->kind = kind;
    node->name = std::move(name);
    node->args = std::move(args);
    return node;
  }

  // Nesting (parentheses, brackets, calls, unary minus, not, **) is bounded: the parser and the
  // evaluator recurse once a level, and a spec is untrusted input that could otherwise overflow
  // the stack (fuzz_family_spec did, with 12 KB of "-(-(-(...").
  static constexpr int kMaxNesting = 100;
  class Nested {
   public:
    explicit Nested(Parser& parser) : parser_(parser) {
      if (++parser_.nesting_ > kMaxNesting) {
        parser_.fail("nested more than " + std::to_string(kMaxNesting) + " levels deep");
      }
    }
    ~Nested() { --parser_.nesting_; }
    Nested(const Nested&) = delete;
    Nested& operator=(const Nested&) = delete;

   private:
    Parser& parser_;
  };

  NodePtr parse_or() {
    const Nested nested(*this);
    NodePtr left = parse_and();
    while (accept_word("or")) left = make(Node::Kind::Binary, "or", {left, parse_and()});
    return left;
  }
  NodePtr parse_and() {
    NodePtr left = parse_not();
    while (accept_word("and")) left = make(Node::Kind::Binary, "and", {left, parse_not()});
    return left;
  }
  NodePtr parse_not() {
    const Nested nested(*this);
    if (accept_word("not")) return make(Node::Kind::Unary, "not", {parse_not()});
    return parse_comparison();
  }
  NodePtr parse_comparison() {
    NodePtr left = parse_sum();
    for (const char* op : {"==", "!=", "<=", ">=", "<", ">"}) {
      if (accept_op(op)) return make(Node::Kind::Binary, op, {left, parse_sum()});
    }
    return left;
  }
  NodePtr parse_sum() {
    NodePtr left = parse_product();
    for (;;) {
      if (accept_op("+")) left = make(Node::Kind::Binary, "+", {left, parse_product()});
      else if (accept_op("-")) left = make(Node::Kind::Binary, "-", {left, parse_product()});
      else return left;
    }
  }
  NodePtr parse_product() {
    NodePtr left = parse_unary();
    for (;;) {
      bool matched = false;
      for (const char* op : {"*", "//", "/", "%"}) {
        if (accept_op(op)) {
          left = make(Node::Kind::Binary, op, {left, parse_unary()});
          matched = true;
          break;
        }
      }
      if (!matched) return left;
    }
  }
  NodePtr parse_unary() {
    const Nested nested(*this);
    if (accept_op("-")) return make(Node::Kind::Unary, "-", {parse_unary()});
    return parse_power();
  }
  NodePtr parse_power() {
    NodePtr base = parse_postfix();
    if (accept_op("**")) return make(Node::Kind::Binary, "**", {base, parse_unary()});
    return base;
  }
  NodePtr parse_postfix() {
    NodePtr node = parse_primary();
    while (accept_op("[")) {
      NodePtr index = parse_or();
      if (!accept_op("]")) fail("expected ']'");
      node = make(Node::Kind::Index, "[]", {node, index});
    }
    return node;
  }
  NodePtr parse_primary() {
    const Token token = peek();
    if (token.kind == Token::Kind::Int || token.kind == Token::Kind::Float) {
      ++pos_;
      auto node = std::make_shared<Node>();
      size_t used = 0;
      try {
        node->literal = token.kind == Token::Kind::Int ? json(std::stoll(token.text, &used))
                                                       : json(std::stod(token.text, &used));
      } catch (const std::exception&) {
        used = 0;
      }
      if (used != token.text.size()) fail("bad number '" + token.text + "'");
      return node;
    }
    if (token.kind == Token::Kind::String) {
      ++pos_;
      auto node = std::make_shared<Node>();
      node->literal = token.text;
      return node;
    }
    if (token.kind == Token::Kind::Name) {
      ++pos_;
      if (token.text == "true" || token.text == "false" || token.text == "null") {
        auto node = std::make_shared<Node>();
        node->literal = token.text == "null" ? json(nullptr) : json(token.text == "true");
        return node;
      }
      if (accept_op("(")) {
        static const std::set<std::string> functions = {"ceil_div", "min", "max", "len", "sum",
                                                         "to_2tuple"};
        if (!functions.count(token.text)) fail("unknown function '" + token.text + "'");
        std::vector<NodePtr> args;
        if (!accept_op(")")) {
          do { args.push_back(parse_or()); } while (accept_op(","));
          if (!accept_op(")")) fail("expected ')'");
        }
        const size_t want =
            (token.text == "len" || token.text == "sum" || token.text == "to_2tuple") ? 1 : 2;
        if (args.size() != want) {
          fail(token.text + "() takes " + std::to_string(want) + " argument(s), got " +
               std::to_string(args.size()));
        }
        return make(Node::Kind::Call, token.text, std::move(args));
      }
      fields_->insert(token.text);
      return make(Node::Kind::Name, token.text, {});
    }
    if (accept_op("(")) {
      NodePtr inner = parse_or();
      if (!accept_op(")")) fail("expected ')'");
      return inner;
    }
    fail(token.kind == Token::Kind::End ? "unexpected end" : "unexpected '" + token.text + "'");
  }

  const std::string& text_;
  const std::string& where_;
  std::vector<Token> tokens_;
  size_t pos_ = 0;
  int nesting_ = 0;
  std::set<std::string>* fields_ = nullptr;
};

class Evaluator {
 public:
  Evaluator(const Expression& expr, const json& config, const Captures& captures,
            const std::string& where)
      : expr_(expr), config_(config), captures_(captures), where_(where) {}

  int64_t to_integer(const json& v) const { return integer(v); }

  json eval(const Node& node) const {
    switch (node.kind) {
      case Node::Kind::Literal: return node.literal;
      case Node::Kind::Name: return lookup(node.name);
      case Node::Kind::Unary: {
        const json value = eval(*node.args[0]);
        if (node.name == "not") return !truthy(value);
        if (value.is_number_float()) return -value.get<double>();
        return checked(-static_cast<__int128>(integer(value)));
      }
      case Node::Kind::Index: {
        const json list = eval(*node.args[0]);
        const int64_t index = integer(eval(*node.args[1]));
        if (!list.is_array()) fail("indexing a value that is not a list: " + list.dump());
        if (index < 0 || index >= static_cast<int64_t>(list.size())) {
          fail("index " + std::to_string(index) + " outside a list of " +
               std::to_string(list.size()));
        }
        return list[static_cast<size_t>(index)];
      }
      case Node::Kind::Call: return call(node);
      case Node::Kind::Binary: return binary(node);
    }
    fail("unknown node");
  }

 private:
  [[noreturn]] void fail(const std::string& why) const {
    throw ExpressionError(where_ + ": expression '" + expr_.text() + "': " + why);
  }

  // An operand of == or !=: a field name may be null there (see binary).
  json eval_comparand(const Node& node) const {
    if (node.kind == Node::Kind::Name) return lookup(node.name, /*allow_null=*/true);
    return eval(node);
  }

  json lookup(const std::string& path, bool allow_null = false) const {
    if (auto it = captures_.find(path); it != captures_.end()) return it->second;
    const json* node = &config_;
    size_t start = 0;
    for (;;) {
      const size_t dot = path.find('.', start);
      const std::string key = path.substr(start, dot == std::string::npos ? dot : dot - start);
      if (!node->is_object() || !node->contains(key)) {
        fail("config.json has no field '" + path + "'");
      }
      node = &(*node)[key];
      if (dot == std::string::npos) break;
      start = dot + 1;
    }
    if (node->is_null() && !allow_null) fail("config.json field '" + path + "' is null");
    return *node;
  }

  static bool truthy(const json& v) {
    if (v.is_boolean()) return v.get<bool>();
    if (v.is_number_integer() || v.is_number_unsigned()) return v.get<int64_t>() != 0;
    if (v.is_number_float()) return v.get<double>() != 0.0;
    if (v.is_string()) return !v.get<std::string>().empty();
    if (v.is_array() || v.is_object()) return !v.empty();
    return false;
  }

  int64_t integer(const json& v) const {
    if (v.is_boolean()) return v.get<bool>() ? 1 : 0;
    if (v.is_number_unsigned()) {
      if (v.get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
        fail("integer " + v.dump() + " too large");
      }
      return v.get<int64_t>();
    }
    if (v.is_number_integer()) return v.get<int64_t>();
    if (v.is_number_float()) {
      const double d = v.get<double>();
      if (std::floor(d) == d && std::fabs(d) < 9.0e15) return static_cast<int64_t>(d);
      fail("expected an integer, got " + v.dump());
    }
    fail("expected a number, got " + v.dump());
  }

  double real(const json& v) const {
    if (v.is_number_float()) return v.get<double>();
    return static_cast<double>(integer(v));
  }

  json checked(__int128 value) const {
    if (value > std::numeric_limits<int64_t>::max() || value < std::numeric_limits<int64_t>::min()) {
      fail("integer overflow");
    }
    return static_cast<int64_t>(value);
  }

  json call(const Node& node) const {
    std::vector<json> args;
    for (const auto& arg : node.args) args.push_back(eval(*arg));
    if (node.name == "len") {
      if (!args[0].is_array()) fail("len() of a value that is not a list: " + args[0].dump());
      return static_cast<int64_t>(args[0].size());
    }
    if (node.name == "sum") {
      if (!args[0].is_array()) fail("sum() of a value that is not a list: " + args[0].dump());
      __int128 total = 0;
      for (const auto& item : args[0]) total += integer(item);
      return checked(total);
    }
    if (node.name == "to_2tuple") {  // timm's sizes: an int n means [n, n]
      if (args[0].is_number_integer()) return json::array({args[0], args[0]});
      if (args[0].is_array() && args[0].size() == 2 && args[0][0].is_number_integer() &&
          args[0][1].is_number_integer()) {
        return args[0];
      }
      fail("to_2tuple() of a value that is neither an integer nor a list of two integers: " +
           args[0].dump());
    }
    const int64_t a = integer(args[0]);
    const int64_t b = integer(args[1]);
    if (node.name == "min") return std::min(a, b);
    if (node.name == "max") return std::max(a, b);
    // ceil_div
    if (b <= 0) fail("ceil_div by " + std::to_string(b));
    // Division truncates toward zero, which is the ceiling for a negative quotient; neither form
    // can overflow (a + b - 1 and -a could, at the ends of int64).
    return a / b + (a % b > 0 ? 1 : 0);
  }

  json binary(const Node& node) const {
    const std::string& op = node.name;
    if (op == "and") {
      const json left = eval(*node.args[0]);
      return truthy(left) ? json(truthy(eval(*node.args[1]))) : json(false);
    }
    if (op == "or") {
      const json left = eval(*node.args[0]);
      return truthy(left) ? json(true) : json(truthy(eval(*node.args[1])));
    }
    if (op == "==" || op == "!=") {
      // A null field (transformers writes None as null: "no position embeddings") compares
      // unequal to every value here; anywhere else a null field is an error.
      const json a = eval_comparand(*node.args[0]);
      const json b = eval_comparand(*node.args[1]);
      bool equal;
      if (a.is_null() || b.is_null()) equal = a.is_null() && b.is_null();
      else if (a.is_number() && b.is_number()) equal = real(a) == real(b);
      else if (a.is_boolean() || b.is_boolean()) equal = truthy(a) == truthy(b);
      else equal = a == b;
      return op == "==" ? equal : !equal;
    }
    const json a = eval(*node.args[0]);
    const json b = eval(*node.args[1]);
    const bool floating = a.is_number_float() || b.is_number_float();
    if (op == "<") return real(a) < real(b);
    if (op == "<=") return real(a) <= real(b);
    if (op == ">") return real(a) > real(b);
    if (op == ">=") return real(a) >= real(b);
    if (floating) {
      const double x = real(a), y = real(b);
      if (op == "+") return json(x + y);
      if (op == "-") return json(x - y);
      if (op == "*") return json(x * y);
      if (op == "**") return json(std::pow(x, y));
      if (y == 0) fail("division by zero");
      if (op == "/") return json(x / y);
      if (op == "//") return json(std::floor(x / y));
      return json(x - std::floor(x / y) * y);
    }
    const __int128 x = integer(a), y = integer(b);
    if (op == "+") return checked(x + y);
    if (op == "-") return checked(x - y);
    if (op == "*") return checked(x * y);
    if (op == "**") {
      if (y < 0) fail("negative power");
      if (x == 0 || x == 1) return checked(y == 0 ? 1 : x);
      if (x == -1) return checked(y % 2 == 0 ? 1 : -1);
      __int128 result = 1;
      for (__int128 k = 0; k < y; ++k) {
        result *= x;
        checked(result);
      }
      return checked(result);
    }
    if (y == 0) fail("division by zero");
    __int128 q = x / y, r = x % y;
    if (r != 0 && ((r < 0) != (y < 0))) { q -= 1; r += y; }  // Python's floor division
    if (op == "/") {
      if (r != 0) {
        fail(std::to_string(static_cast<int64_t>(x)) + " / " + std::to_string(static_cast<int64_t>(y)) +
             " is not exact (use // to floor)");
      }
      return checked(q);
    }
    if (op == "//") return checked(q);
    return checked(r);
  }

  const Expression& expr_;
  const json& config_;
  const Captures& captures_;
  const std::string& where_;
};

}  // namespace

Expression Expression::parse(const std::string& text, const std::string& where) {
  Expression expr;
  expr.text_ = text;
  Parser parser(text, where);
  expr.root_ = parser.parse_all(expr.fields_);
  return expr;
}

json Expression::evaluate(const json& config, const Captures& captures,
                          const std::string& where) const {
  if (!root_) throw ExpressionError(where + ": empty expression");
  Evaluator evaluator(*this, config, captures, where);
  return evaluator.eval(*root_);
}

int64_t Expression::evaluate_int(const json& config, const Captures& captures,
                                 const std::string& where) const {
  const json value = evaluate(config, captures, where);
  if (value.is_number() || value.is_boolean()) {
    // The evaluator's own conversion: whole floats, booleans, and unsigned values that fit.
    return Evaluator(*this, config, captures, where).to_integer(value);
  }
  throw ExpressionError(where + ": expression '" + text_ + "' should give an integer, gave " +
                        value.dump());
}

bool Expression::evaluate_bool(const json& config, const Captures& captures,
                               const std::string& where) const {
  const json value = evaluate(config, captures, where);
  if (value.is_boolean()) return value.get<bool>();
  if (value.is_number()) return value.get<double>() != 0.0;
  if (value.is_string()) return !value.get<std::string>().empty();
  if (value.is_null()) return false;
  return !value.empty();
}

}  // namespace hfport
