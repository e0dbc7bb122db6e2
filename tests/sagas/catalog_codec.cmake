# Plan version JSON codec: round trips, malformed documents, seeded property test.
recur_test(sagas_catalog_codec_test LABEL unit
  SOURCES catalog_codec_test.cpp
  DEPS recur::sagas)
