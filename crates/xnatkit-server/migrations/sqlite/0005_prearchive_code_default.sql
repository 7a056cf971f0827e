-- A project without a row here now gets XNAT 1.8's default, auto-archive
-- (prearchive_code 4). Projects created while the default was manual (0)
-- keep the behaviour they were created with.
INSERT INTO project_prearchive_codes (project, code)
SELECT id, 0 FROM projects
WHERE id NOT IN (SELECT project FROM project_prearchive_codes);
