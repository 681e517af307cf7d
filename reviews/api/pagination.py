"""Cursor pagination of the API's lists: newest first by id, ``page_size`` checked."""

from rest_framework.exceptions import ValidationError

from hitlplatform.api import IdCursorPagination


class ApiCursorPagination(IdCursorPagination):
    """``page_size`` is a positive integer; above ``max_page_size`` it is cut to it.

    DRF falls back to the default page size on any value it cannot read, so
    ``page_size=abc`` quietly answered with a full page; it is a 400 here, and
    so is a repeated ``page_size``. An empty value is no value, as for every
    optional query parameter.
    """

    page_size_query_param = "page_size"

    def get_page_size(self, request):
        if len(request.query_params.getlist(self.page_size_query_param)) > 1:
            # DRF would read the last value and ignore the others, whatever they hold.
            raise ValidationError({self.page_size_query_param: ["Give this parameter once."]})
        raw = request.query_params.get(self.page_size_query_param, "")
        if raw == "":
            return self.page_size
        try:
            size = int(raw)
        except ValueError:
            size = 0
        if size < 1:
            raise ValidationError({self.page_size_query_param: ["Must be a positive integer."]})
        return min(size, self.max_page_size)

    def get_schema_operation_parameters(self, view):
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            if parameter["name"] == self.page_size_query_param:
                parameter["schema"]["minimum"] = 1
                parameter["description"] = (
                    f"Results per page (default {self.page_size}); "
                    f"more than {self.max_page_size} is cut to {self.max_page_size}."
                )
        return parameters
