// What the server serves from the database: the seed documents as JSON, lookups by ObjectId
// and by string id, 404 for what is missing or not allow-listed, 400 for bad names and ids.
#include <catch2/catch.hpp>

#include "fixture.hpp"

using namespace e2e;

namespace {

boost::json::value seed_doc(const char* file) {
    return read_json_file(test_support::standin::data_dir() + "/" + file);
}

// A JSON error answer: {"error": "...", "status": N} with the given status.
void require_json_error(const response& r, unsigned status) {
    INFO("status " << r.status << ", body " << r.body);
    REQUIRE(r.status == status);
    REQUIRE(r.header("Content-Type") == "application/json");
    auto v = parse(r.body);
    REQUIRE(v.is_object());
    REQUIRE(v.as_object().contains("error"));
    REQUIRE(v.at("error").is_string());
    REQUIRE(v.at("status") == status);
}

void require_document(const response& r, const boost::json::value& expected) {
    INFO("status " << r.status << ", body " << r.body.substr(0, 300));
    REQUIRE(r.status == 200);
    REQUIRE(r.header("Content-Type") == "application/json");
    REQUIRE(same_json(parse(r.body), expected));
}

}  // namespace

TEST_CASE("GET /mongo returns the small seed document", "[e2e][mongo]") {
    database db;
    server srv{db.uri()};
    auto r = get(srv.port(), "/mongo");
    require_document(r, seed_doc("small_doc.json"));
    // The ObjectId comes back as relaxed extended JSON, exactly as in the seed file.
    REQUIRE(parse(r.body).at("_id").at("$oid").as_string() == small_oid);
    REQUIRE(r.header("Content-Length") == std::to_string(r.body.size()));
    REQUIRE(r.header("Server") == "coroserve");
    // IMF-fixdate, e.g. "Thu, 26 Nov 2026 15:47:23 GMT".
    auto date = r.header("Date");
    REQUIRE(date);
    REQUIRE(date->size() == 29);
    REQUIRE(date->substr(3, 2) == ", ");
    REQUIRE(date->ends_with(" GMT"));
}

TEST_CASE("GET /mongo/{collection} serves each allow-listed seed collection", "[e2e][mongo]") {
    database db;
    server srv{db.uri()};
    connection c{srv.port()};
    require_document(c.get("/mongo/big"), seed_doc("big_doc.json"));
    require_document(c.get("/mongo/small"), seed_doc("small_doc.json"));
    require_document(c.get("/mongo/articles"), seed_doc("small_doc.json"));
    // The big document is served whole, many times over the same connection.
    for (int i = 0; i < 20; ++i) {
        auto r = c.get("/mongo/big");
        REQUIRE(r.status == 200);
        REQUIRE(r.body.size() > 5000);
    }
}

TEST_CASE("GET /mongo/{collection}/{id} finds documents by ObjectId and by string id",
          "[e2e][mongo]") {
    database db;
    server srv{db.uri()};
    connection c{srv.port()};
    require_document(c.get("/mongo/big/" + std::string{big_oid}), seed_doc("big_doc.json"));
    require_document(c.get("/mongo/small/" + std::string{small_oid}), seed_doc("small_doc.json"));
    // Hex digits in upper case name the same ObjectId.
    require_document(c.get("/mongo/small/537416B501D53A77BB94135C"), seed_doc("small_doc.json"));

    auto r = c.get("/mongo/" + std::string{strings_collection} + "/" + std::string{string_id});
    REQUIRE(r.status == 200);
    auto doc = parse(r.body);
    REQUIRE(doc.at("_id").as_string() == string_id);
    REQUIRE(doc.at("n") == 42);
    r = c.get("/mongo/" + std::string{strings_collection} + "/article-43");
    REQUIRE(r.status == 200);
    REQUIRE(parse(r.body).at("n") == 43);
}

TEST_CASE("Missing documents and empty collections are 404 with a JSON error", "[e2e][mongo]") {
    database db;
    server srv{db.uri(), {"--collections", allowed_collections() + ",e2e_empty"}};
    connection c{srv.port()};
    // A well-formed ObjectId that is not there, in the right collection and in another one.
    require_json_error(c.get("/mongo/small/000000000000000000000000"), 404);
    require_json_error(c.get("/mongo/small/" + std::string{big_oid}), 404);
    // A string id that is not there; 24 characters but not hex: a string id, not found.
    require_json_error(c.get("/mongo/" + std::string{strings_collection} + "/no-such-id"), 404);
    require_json_error(c.get("/mongo/small/zzzzzzzzzzzzzzzzzzzzzzzz"), 404);
    // An allow-listed collection with no documents.
    require_json_error(c.get("/mongo/e2e_empty"), 404);
    // The connection survives 404s.
    REQUIRE(c.get("/mongo").status == 200);
}

TEST_CASE("GET /mongo on an empty default collection is 404", "[e2e][mongo]") {
    database db;
    server srv{db.uri(), {"--collection", "e2e_empty"}};
    require_json_error(get(srv.port(), "/mongo"), 404);
}

TEST_CASE("Only allow-listed collections are served", "[e2e][mongo]") {
    database db;
    server srv{db.uri()};
    connection c{srv.port()};
    // e2e_hidden exists in the database, but is not in --collections.
    require_json_error(c.get("/mongo/" + std::string{hidden_collection}), 404);
    require_json_error(c.get("/mongo/" + std::string{hidden_collection} + "/secret"), 404);
    require_json_error(c.get("/mongo/nosuchcollection"), 404);

    // With it in the allow-list, the same document is served.
    server open{db.uri(), {"--collections", std::string{hidden_collection}}};
    auto r = get(open.port(), "/mongo/" + std::string{hidden_collection} + "/secret");
    REQUIRE(r.status == 200);
    REQUIRE(parse(r.body).at("_id") == "secret");
    // ... and the allow-list is all there is: the seed collections are now refused.
    require_json_error(get(open.port(), "/mongo/big"), 404);
}

TEST_CASE("Invalid collection names and ids are 400", "[e2e][mongo]") {
    database db;
    server srv{db.uri()};
    connection c{srv.port()};
    const std::string too_long_name(65, 'a');
    const std::string too_long_id(129, 'a');
    const std::vector<std::string> bad = {
        "/mongo/..",
        "/mongo/.",
        "/mongo/bad.name",
        "/mongo/$cmd",
        "/mongo/%2e%2e",
        "/mongo/" + too_long_name,
        "/mongo/small/..",
        "/mongo/small/.",
        "/mongo/small/a.b",
        "/mongo/small/$gt",
        "/mongo/small/%24gt",
        "/mongo/small/{\"$gt\":\"\"}",
        "/mongo/small/" + too_long_id,
        "/mongo/small/",
    };
    for (const auto& target : bad) {
        INFO("target " << target);
        auto r = c.get(target);
        require_json_error(r, 400);
        if (r.closes()) c = connection{srv.port()};
    }
    // Traversal-looking paths that are not one of our routes are simply unknown.
    require_json_error(get(srv.port(), "/mongo/small/../big"), 404);
    require_json_error(get(srv.port(), "/mongo/../json"), 400);  // ".." as a collection name
}
