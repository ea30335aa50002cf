//! The bundled kiosk page: one HTML document with its CSS and JavaScript inlined, so that every
//! request for it carries the same `?token=` and nothing is fetched from elsewhere.

const HTML: &str = include_str!("page.html");
const CSS: &str = include_str!("page.css");
const JS: &str = include_str!("page.js");

/// The page as served at `/`.
pub fn document() -> String {
    HTML.replace("/* page.css */", CSS)
        .replace("/* page.js */", JS)
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_page_has_its_style_and_script_and_loads_nothing_from_elsewhere() {
        let page = super::document();
        assert!(page.contains("id=\"shown\""));
        assert!(
            page.contains("emotiond: shown "),
            "the console line the browser test reads"
        );
        assert!(page.contains("new EventSource"));
        assert!(page.contains(".bar {"));
        assert!(!page.contains("/* page."), "every placeholder is filled");
        assert!(!page.contains("http://") && !page.contains("https://") && !page.contains("//cdn"));
    }
}
