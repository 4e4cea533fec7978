// mongo-seed: seeds a real MongoDB with the same files the stand-in takes with --seed.
//   mongo-seed --uri mongodb://host:27017 articles.articles=bench/data/small_doc.json ...
// Each db.coll is dropped, then the file's documents are inserted (one extended-JSON
// document, an array of them, or JSON lines). Exit status: 0 ok, 1 database error, 2 usage.
#include <mongoc/mongoc.h>

#include <iostream>
#include <string>
#include <vector>

#include "json_file.hpp"

namespace {

constexpr const char* usage =
    "usage: mongo-seed --uri URI db.coll=FILE.json [db.coll=FILE.json ...]\n";

int seed(mongoc_client_t* client, const standin::seed_spec& spec) {
    std::vector<standin::bson_doc> docs;
    try {
        docs = standin::read_json_documents(spec.path);
    } catch (const std::exception& e) {
        std::cerr << "mongo-seed: " << e.what() << "\n";
        return 2;
    }
    const auto dot = spec.ns.find('.');
    const std::string db = spec.ns.substr(0, dot), name = spec.ns.substr(dot + 1);
    mongoc_collection_t* coll = mongoc_client_get_collection(client, db.c_str(), name.c_str());
    bson_error_t error;
    // "ns not found" (26) only means there was nothing to drop.
    if (!mongoc_collection_drop(coll, &error) && error.code != 26) {
        std::cerr << "mongo-seed: drop " << spec.ns << ": " << error.message << "\n";
        mongoc_collection_destroy(coll);
        return 1;
    }
    // A bulk write: one insert per document, sent in as few batches as the server allows.
    mongoc_bulk_operation_t* bulk =
        mongoc_collection_create_bulk_operation_with_opts(coll, nullptr);
    for (const auto& d : docs) mongoc_bulk_operation_insert(bulk, d.get());
    bson_t reply;
    const bool ok = mongoc_bulk_operation_execute(bulk, &reply, &error) != 0;
    bson_iter_t it;
    const int64_t inserted =
        bson_iter_init_find(&it, &reply, "nInserted") ? bson_iter_as_int64(&it) : 0;
    bson_destroy(&reply);
    mongoc_bulk_operation_destroy(bulk);
    mongoc_collection_destroy(coll);
    if (!ok) {
        std::cerr << "mongo-seed: insert into " << spec.ns << ": " << error.message << "\n";
        return 1;
    }
    std::cout << spec.ns << ": " << inserted << " document(s) from " << spec.path << "\n";
    return inserted == static_cast<int64_t>(docs.size()) ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
    std::string uri_text;
    std::vector<standin::seed_spec> specs;
    for (int i = 1; i < argc; ++i) {
        const std::string arg = argv[i];
        if (arg == "--help" || arg == "-h") {
            std::cout << usage;
            return 0;
        }
        if (arg == "--uri") {
            if (i + 1 >= argc) {
                std::cerr << "mongo-seed: --uri needs a value\n" << usage;
                return 2;
            }
            uri_text = argv[++i];
            continue;
        }
        try {
            specs.push_back(standin::parse_seed_spec(arg));
        } catch (const std::invalid_argument& e) {
            std::cerr << "mongo-seed: " << e.what() << "\n" << usage;
            return 2;
        }
    }
    if (uri_text.empty() || specs.empty()) {
        std::cerr << "mongo-seed: --uri and at least one db.coll=FILE are required\n" << usage;
        return 2;
    }

    mongoc_init();
    bson_error_t error;
    mongoc_uri_t* uri = mongoc_uri_new_with_error(uri_text.c_str(), &error);
    if (!uri) {
        std::cerr << "mongo-seed: bad --uri: " << error.message << "\n";
        mongoc_cleanup();
        return 2;
    }
    mongoc_client_t* client = mongoc_client_new_from_uri(uri);
    mongoc_client_set_error_api(client, MONGOC_ERROR_API_VERSION_2);
    int status = 0;
    for (const auto& spec : specs) {
        status = seed(client, spec);
        if (status != 0) break;
    }
    mongoc_client_destroy(client);
    mongoc_uri_destroy(uri);
    mongoc_cleanup();
    return status;
}
