"""Download responses for stored export files, shared by the API and the admin.

The caller has already asked ``reviews.access``; this only answers with the
bytes: streamed from the export storage in bounded memory, or a redirect to a
short-lived presigned URL when ``HITL_S3_PRESIGNED_DOWNLOADS`` is on.
"""

from django.http import FileResponse, Http404, HttpResponse, HttpResponseRedirect

from datasets.storage import export_open, export_url


class StoredFileResponse(FileResponse):
    # Larger blocks than FileResponse's 4 KiB: fewer round trips through the S3 body.
    block_size = 256 * 1024


def stored_file_response(name: str, *, content_type: str) -> HttpResponse:
    """The stored export file ``name`` as an attachment; 404 when storage lacks it."""
    url = export_url(name, filename=name, content_type=content_type)
    if url is not None:
        return HttpResponseRedirect(url)
    try:
        stream, size = export_open(name)
    except FileNotFoundError:
        raise Http404("The export file is missing from storage.") from None
    response = StoredFileResponse(
        stream, as_attachment=True, filename=name, content_type=content_type
    )
    response["Content-Length"] = str(size)
    return response
