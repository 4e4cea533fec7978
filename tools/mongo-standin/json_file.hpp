// json_file: reads the documents of a seed file written in MongoDB extended JSON: one
// document, an array of documents, or several documents one after another (JSON lines).
// Shared by mongo-standin (--seed) and mongo-seed.
#pragma once

#include <bson/bson.h>

#include <string>
#include <vector>

#include "bson_util.hpp"

namespace standin {

// Throws std::runtime_error naming the file and the problem.
std::vector<bson_doc> read_json_documents(const std::string& path);

// "db.coll=FILE" -> {"db.coll", "FILE"}; throws std::invalid_argument when malformed.
struct seed_spec {
    std::string ns;
    std::string path;
};
seed_spec parse_seed_spec(const std::string& arg);

}  // namespace standin
