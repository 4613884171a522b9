"""nbgrader configuration for the course (run nbgrader from this folder, or use `make`)."""

import os

c = get_config()  # noqa: F821 (provided by nbgrader)

c.CourseDirectory.root = os.path.dirname(os.path.abspath(__file__))
c.CourseDirectory.course_id = "roofline-course"
# Folder names under the root: authored notebooks (with solutions and hidden tests)
# are the nbgrader "source"; the student versions are the "release".
c.CourseDirectory.source_directory = "solutions"
c.CourseDirectory.release_directory = "exercises"
c.CourseDirectory.submitted_directory = "submitted"
c.CourseDirectory.autograded_directory = "autograded"
c.CourseDirectory.feedback_directory = "feedback"

# An infinite loop in a submission is interrupted after this many seconds per cell.
c.Execute.timeout = 60
c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}
