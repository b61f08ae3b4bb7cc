//! The README's section 2 example runs against `doc/open_carts.rs`: that file must be
//! the projection section 1 shows, word for word.

#[test]
fn the_readme_shows_the_projection_its_test_example_runs() {
    let readme = include_str!("../README.md");
    let file = include_str!("../doc/open_carts.rs");
    let shown = format!("```rust\n{file}```");
    assert!(
        readme.contains(&shown),
        "README.md's open-carts lib.rs differs from doc/open_carts.rs: edit both"
    );
}
