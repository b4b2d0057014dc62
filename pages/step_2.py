from pages.step_view import step_page

step_page(2)
