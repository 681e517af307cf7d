"""Querysets compiled to SQL once, then run with new parameter values.

Building and compiling a queryset costs about half a millisecond of CPU,
several times what PostgreSQL spends answering a lookup by key. The queries
every single-item POST runs (the API key with its project, the project's
check rules) are compiled once per thread and reused; the rows become model
instances the way ``QuerySet`` iteration makes them (``select_related``
included), through the compiler that produced the SQL, with the value
converters and the related-object populators worked out once as well.

``ModelColumns`` does the same for a hand-written SELECT that joins what the
ORM cannot in one query (the API key, its project, the project's judge
configuration and check rules): a model's columns in the SELECT list, and
those values of a row back into an instance, converted as the ORM converts them.
"""

import threading
from collections.abc import Callable, Sequence
from typing import Any

from django.db import connections, models
from django.db.models.query import get_related_populators


class Precompiled:
    """``build(*values)``'s queryset, compiled at the first call, rerun with new ``values``.

    ``sample`` holds one value per parameter of ``build``, distinct from any
    other parameter of the query: the compiled query's parameters are found by
    them (a value the query uses several times fills each of its places), so
    later calls can put their own values in their places. Only plain filters
    and raw SQL parameters belong here (``field=value``): a value the lookup
    transforms (``__in``, ``__contains``) would not be found. Annotations
    become attributes of the instances, as in a queryset.
    """

    def __init__(self, build: Callable[..., models.QuerySet], *, sample: Sequence[Any]) -> None:
        self._build = build
        self._sample = tuple(sample)
        self._local = threading.local()

    def _compiled(self, alias: str):
        cache = self._local.__dict__.setdefault("by_alias", {})
        compiled = cache.get(alias)
        if compiled is None:
            queryset = self._build(*self._sample).using(alias)
            compiler = queryset.query.get_compiler(using=alias)
            sql, params = compiler.as_sql()
            params = list(params)
            slots = []
            for value in self._sample:
                matches = [
                    i
                    for i, param in enumerate(params)
                    if type(param) is type(value) and param == value
                ]
                if not matches:
                    raise ValueError(f"Sample value {value!r} is not a parameter of the query.")
                slots.append(matches)
            klass_info, select = compiler.klass_info, compiler.select
            start, end = klass_info["select_fields"][0], klass_info["select_fields"][-1] + 1
            init_list = [column[0].target.attname for column in select[start:end]]
            # What ``results_iter`` and ``QuerySet`` iteration work out on every call.
            converters = compiler.get_converters([column[0] for column in select])
            populators = get_related_populators(klass_info, select, alias)
            compiled = cache[alias] = (
                compiler,
                sql,
                params,
                slots,
                start,
                end,
                init_list,
                converters,
                populators,
            )
        return compiled

    def __call__(self, *values: Any, using: str = "default") -> list[models.Model]:
        if connections[using].vendor != "postgresql":
            # SQLite (the embedded default of ``make run``) adapts parameters before
            # they reach the compiled query (a datetime becomes text): the queryset.
            return list(self._build(*values).using(using))
        compiler, sql, params, slots, start, end, init_list, converters, populators = (
            self._compiled(using)
        )
        params = list(params)
        for places, value in zip(slots, values, strict=True):
            for place in places:
                params[place] = value
        with connections[using].cursor() as cursor:
            cursor.execute(sql, params)
            rows = cursor.fetchall()
        if converters:
            rows = compiler.apply_converters(rows, converters)
        model = compiler.klass_info["model"]
        found = []
        for row in rows:
            obj = model.from_db(using, init_list, row[start:end])
            for populator in populators:
                populator.populate(row, obj)
            for name, index in compiler.annotation_col_map.items():
                setattr(obj, name, row[index])
            found.append(obj)
        return found


class ModelColumns:
    """``model``'s concrete columns, selected from the table aliased ``table`` in a
    hand-written query, and a row's values back into an instance.

    The values go through the converters the ORM would apply (JSON, encrypted or
    custom fields), worked out once per thread and database alias.
    """

    def __init__(self, model: type[models.Model], table: str) -> None:
        self.model = model
        self.table = table
        self.fields = list(model._meta.concrete_fields)
        self.names = [f.attname for f in self.fields]
        self.width = len(self.fields)
        self._pk_index = self.fields.index(model._meta.pk)
        self._local = threading.local()

    def select(self, using: str = "default") -> str:
        """The SELECT list of the columns, in the order ``instance`` reads them."""
        quote = connections[using].ops.quote_name
        return ", ".join(f"{self.table}.{quote(f.column)}" for f in self.fields)

    def _converters(self, using: str) -> list[tuple[int, list, Any]]:
        cache = self._local.__dict__.setdefault("by_alias", {})
        found = cache.get(using)
        if found is None:
            connection = connections[using]
            found = []
            for index, field in enumerate(self.fields):
                column = field.get_col(self.table)
                converters = connection.ops.get_db_converters(column) + column.get_db_converters(
                    connection
                )
                if converters:
                    found.append((index, converters, column))
            cache[using] = found
        return found

    def instance(self, row: Sequence[Any], start: int, using: str = "default"):
        """The instance held by ``row[start:start + width]``; None if its key is NULL
        (an outer join that found nothing)."""
        values = list(row[start : start + self.width])
        if values[self._pk_index] is None:
            return None
        connection = connections[using]
        for index, converters, column in self._converters(using):
            value = values[index]
            for converter in converters:
                value = converter(value, column, connection)
            values[index] = value
        return self.model.from_db(using, self.names, values)
