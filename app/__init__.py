"""The application layer: every operation a front end (CLI, web, API) offers.

Each takes the acting principal and checks access in one place (``access``); it joins the
rules of ``workflow`` with the records of ``storage`` and returns plain data.
"""
