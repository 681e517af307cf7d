"""A model row and its django-simple-history row in one statement.

``instance.save()`` runs the row's INSERT or UPDATE, then simple-history's
post_save handler builds the historical instance and saves it: two round
trips and two compiled queries. On the reviewer's submit-and-next that is five
pairs. ``insert_with_history`` and ``update_with_history`` write the same two
rows (the historical instance is built by simple-history's own code path, its
``pre_create_historical_record`` and ``post_create_historical_record`` signals
sent) in one data-modifying CTE::

    WITH saved AS (UPDATE t SET ... WHERE id = %s RETURNING id)
    INSERT INTO historical_t (...) SELECT ... FROM saved RETURNING history_id

On PostgreSQL; elsewhere (SQLite, the ``make run`` default) they are
``save()``. Django's ``pre_save`` and ``post_save`` signals are not sent: the
project connects no receiver to the models written this way besides
simple-history's (a test checks it). With history disabled (the setting, or
``skip_history_when_saving``) or a model with history m2m fields, they fall
back to ``save()``.
"""

from django.conf import settings
from django.db import DatabaseError, connections, models
from django.db.models.signals import post_save, pre_save
from django.utils import timezone
from simple_history.models import HistoricalRecords
from simple_history.signals import post_create_historical_record, pre_create_historical_record

_RECORDS: dict[type, HistoricalRecords] = {}


def records_of(model: type[models.Model]) -> HistoricalRecords:
    """The ``HistoricalRecords`` that writes ``model``'s history (its post_save receiver)."""
    found = _RECORDS.get(model)
    if found is None:
        for receiver in post_save._live_receivers(model)[0]:
            owner = getattr(receiver, "__self__", None)
            if isinstance(owner, HistoricalRecords) and owner.cls is model:
                found = owner
                break
        else:
            raise LookupError(f"{model.__name__} has no simple-history records.")
        _RECORDS[model] = found
    return found


def foreign_receivers(model: type[models.Model]) -> list:
    """Receivers of ``model``'s pre_save and post_save besides simple-history's."""
    return [
        receiver
        for signal in (pre_save, post_save)
        for receiver in signal._live_receivers(model)[0]
        if not isinstance(getattr(receiver, "__self__", None), HistoricalRecords)
    ]


def _plain(instance: models.Model, records: HistoricalRecords, using: str) -> bool:
    # SQLite (the embedded default of ``make run``) has no data-modifying CTEs.
    return (
        connections[using].vendor != "postgresql"
        or not getattr(settings, "SIMPLE_HISTORY_ENABLED", True)
        or hasattr(instance, "skip_history_when_saving")
        or bool(records.m2m_fields)
    )


def _history_instance(instance, records: HistoricalRecords, history_type: str):
    """What ``HistoricalRecords.create_historical_record`` builds, unsaved."""
    history_date = getattr(instance, "_history_date", timezone.now())
    history_user = records.get_history_user(instance)
    reason = records.get_change_reason_for_object(instance, history_type, None)
    manager = getattr(instance, records.manager_name)
    attrs = {f.attname: getattr(instance, f.attname) for f in records.fields_included(instance)}
    if getattr(manager.model, "history_relation", None) is not None:
        attrs["history_relation"] = instance
    history = manager.model(
        history_date=history_date,
        history_type=history_type,
        history_user=history_user,
        history_change_reason=reason,
        **attrs,
    )
    pre_create_historical_record.send(
        sender=manager.model,
        instance=instance,
        history_date=history_date,
        history_user=history_user,
        history_change_reason=reason,
        history_instance=history,
        using=None,
    )
    return history


def _history_insert(history, *, connection, id_sql: str | None):
    """The history INSERT's column list, its SELECT list and parameters;
    ``id_sql`` replaces the copied primary key's value (an INSERT's new id)."""
    meta = history._meta
    quote = connection.ops.quote_name
    columns, values, params = [], [], []
    for field in meta.local_concrete_fields:
        if field.primary_key:
            continue
        columns.append(quote(field.column))
        if id_sql is not None and field.attname == history.instance_type._meta.pk.attname:
            values.append(id_sql)
            continue
        values.append("%s")
        params.append(field.get_db_prep_save(field.pre_save(history, True), connection))
    return meta.db_table, columns, values, params


def _finish_history(instance, history, records: HistoricalRecords, history_id) -> None:
    history.pk = history_id
    history._state.adding = False
    post_create_historical_record.send(
        sender=type(history),
        instance=instance,
        history_instance=history,
        history_date=history.history_date,
        history_user=history.history_user,
        history_change_reason=history.history_change_reason,
        using=None,
    )


def insert_with_history(instance: models.Model, using: str = "default") -> None:
    """``instance.save()`` of a new row with its "+" history row, one statement."""
    model = type(instance)
    records = records_of(model)
    if _plain(instance, records, using):
        instance.save(using=using)
        return
    connection = connections[using]
    quote = connection.ops.quote_name
    meta = model._meta
    pk = meta.pk
    fields = [f for f in meta.local_concrete_fields if not (f.primary_key and pk.db_returning)]
    values = [f.get_db_prep_save(f.pre_save(instance, True), connection) for f in fields]
    history = _history_instance(instance, records, "+")
    table, columns, selected, params = _history_insert(
        history, connection=connection, id_sql=f"saved.{quote(pk.column)}"
    )
    sql = (
        f"WITH saved AS (INSERT INTO {quote(meta.db_table)} "  # noqa: S608
        f"({', '.join(quote(f.column) for f in fields)}) "
        f"VALUES ({', '.join(['%s'] * len(fields))}) RETURNING {quote(pk.column)}) "
        f"INSERT INTO {quote(table)} ({', '.join(columns)}) "
        f"SELECT {', '.join(selected)} FROM saved "
        f"RETURNING {quote(history._meta.pk.column)}, "
        f"{quote(history._meta.get_field(pk.attname).column)}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, values + params)
        history_id, new_id = cursor.fetchone()
    instance.pk = new_id
    instance._state.adding = False
    instance._state.db = using
    setattr(history, pk.attname, new_id)
    _finish_history(instance, history, records, history_id)


def update_with_history(instance: models.Model, update_fields, using: str = "default") -> None:
    """``instance.save(update_fields=...)`` with its "~" history row, one statement."""
    model = type(instance)
    records = records_of(model)
    if _plain(instance, records, using):
        instance.save(update_fields=update_fields, using=using)
        return
    connection = connections[using]
    quote = connection.ops.quote_name
    meta = model._meta
    names = set(update_fields)
    fields = [f for f in meta.local_concrete_fields if f.name in names or f.attname in names]
    if len(fields) != len(names):
        raise ValueError(f"Unknown fields among {sorted(names)} for {model.__name__}.")
    values = [f.get_db_prep_save(f.pre_save(instance, False), connection) for f in fields]
    history = _history_instance(instance, records, "~")
    table, columns, selected, params = _history_insert(history, connection=connection, id_sql=None)
    pk = meta.pk
    sql = (
        f"WITH saved AS (UPDATE {quote(meta.db_table)} SET "  # noqa: S608
        f"{', '.join(f'{quote(f.column)} = %s' for f in fields)} "
        f"WHERE {quote(pk.column)} = %s RETURNING 1) "
        f"INSERT INTO {quote(table)} ({', '.join(columns)}) "
        f"SELECT {', '.join(selected)} FROM saved RETURNING {quote(history._meta.pk.column)}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [*values, pk.get_db_prep_value(instance.pk, connection), *params])
        found = cursor.fetchone()
    if found is None:
        raise DatabaseError("Save with update_fields did not affect any rows.")
    _finish_history(instance, history, records, found[0])
