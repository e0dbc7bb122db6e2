target_sources(recur_sagas PRIVATE catalog_codec.cpp)
