//! PostgreSQL backend tests: they run where `REFRACT_TEST_DATABASE_URL` names a
//! server (each test in a database of its own, dropped after), and pass without
//! doing anything elsewhere.
