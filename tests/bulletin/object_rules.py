"""The bulletin API's read routes: the city's one publication, edited by its bulletin editors (bulletin.edit)."""

from tests.security.objects import not_object_scoped

not_object_scoped("GET", "/api/bulletin/profiles/{region_code}",
                  "bulletin editors only (bulletin.edit): the publisher's own details, printed in every issue")
not_object_scoped("GET", "/api/bulletin/issues",
                  "bulletin editors only (bulletin.edit): the city's issue register, drafts included")
not_object_scoped("GET", "/api/bulletin/issues/{issue_id}/editions/{fmt}",
                  "bulletin editors only (bulletin.edit): an issue's editions; the published ones are public pages")
