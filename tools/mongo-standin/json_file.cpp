// json_file: libbson's JSON reader parses a stream of documents; a top-level array is
// parsed whole and split into its elements.
#include "json_file.hpp"

#include <fstream>
#include <sstream>
#include <stdexcept>

namespace standin {

std::vector<bson_doc> read_json_documents(const std::string& path) {
    std::ifstream file(path, std::ios::binary);
    if (!file) throw std::runtime_error(path + ": cannot open");
    std::stringstream content;
    content << file.rdbuf();
    const std::string text = content.str();

    std::vector<bson_doc> docs;
    bson_error_t error;
    const auto first = text.find_first_not_of(" \t\r\n");
    if (first != std::string::npos && text[first] == '[') {
        // Wrap the array so that libbson sees a document: {"a": [...]}.
        const std::string wrapped = "{\"a\": " + text + "}";
        bson_doc whole(bson_new_from_json(reinterpret_cast<const uint8_t*>(wrapped.data()),
                                          static_cast<ssize_t>(wrapped.size()), &error));
        if (!whole.get()) throw std::runtime_error(path + ": " + error.message);
        bson_iter_t it, element;
        if (!bson_iter_init_find(&it, whole.get(), "a") || !BSON_ITER_HOLDS_ARRAY(&it))
            throw std::runtime_error(path + ": expected an array of documents");
        bson_view array(subdocument_of(it));
        bson_iter_init(&element, array.get());
        while (bson_iter_next(&element)) {
            if (!BSON_ITER_HOLDS_DOCUMENT(&element))
                throw std::runtime_error(path + ": array element " + std::string(key_of(element)) +
                                         " is not a document");
            bson_view doc(subdocument_of(element));
            docs.emplace_back(bson_copy(doc.get()));
        }
        return docs;
    }

    bson_json_reader_t* reader = bson_json_data_reader_new(false, 0);
    bson_json_data_reader_ingest(reader, reinterpret_cast<const uint8_t*>(text.data()),
                                 text.size());
    for (;;) {
        bson_doc doc;
        int rc = bson_json_reader_read(reader, doc.get(), &error);
        if (rc == 0) break;
        if (rc < 0) {
            bson_json_reader_destroy(reader);
            throw std::runtime_error(path + ": document " + std::to_string(docs.size() + 1) + ": " +
                                     error.message);
        }
        docs.push_back(std::move(doc));
    }
    bson_json_reader_destroy(reader);
    if (docs.empty()) throw std::runtime_error(path + ": no document");
    return docs;
}

seed_spec parse_seed_spec(const std::string& arg) {
    const auto eq = arg.find('=');
    const std::string ns = arg.substr(0, eq);
    const auto dot = ns.find('.');
    if (eq == std::string::npos || dot == 0 || dot == std::string::npos || dot + 1 == ns.size() ||
        eq + 1 == arg.size())
        throw std::invalid_argument("expected db.coll=FILE.json, got '" + arg + "'");
    return {ns, arg.substr(eq + 1)};
}

}  // namespace standin
