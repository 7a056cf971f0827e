-- Wrapper configurations (the Container Service's CommandConfiguration):
-- what the site (project '') or a project sets over a wrapper's input
-- defaults, matchers and output labels, as the JSON the API takes. A
-- launch resolves the command with the site's and then the project's
-- configuration laid over it.
CREATE TABLE wrapper_configs (
    wrapper_id INTEGER NOT NULL REFERENCES command_wrappers(id) ON DELETE CASCADE,
    project TEXT NOT NULL,
    config TEXT NOT NULL,
    PRIMARY KEY (wrapper_id, project)
);
