"""Agreement API: ``GET /api/v1/projects/{slug}/agreement/``."""

from datetime import timedelta

from django.shortcuts import get_object_or_404
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from adjudication.metrics import project_agreement
from reviews.access import Capability, projects_where
from reviews.api.schema import COMMON_HEADERS, error_responses

DEFAULT_PERIOD = timedelta(days=30)


class PeriodSerializer(serializers.Serializer):
    """A half-open period [start, end); the default is the last 30 days."""

    start = serializers.DateTimeField(required=False)
    end = serializers.DateTimeField(required=False)

    def validate(self, attrs):
        end = attrs.get("end") or timezone.now()
        try:
            start = attrs.get("start") or end - DEFAULT_PERIOD
        except OverflowError as exc:
            # The default start would fall before year 1.
            raise serializers.ValidationError(
                {"end": ["Too early to end a 30-day period: give start too."]}
            ) from exc
        if start >= end:
            raise serializers.ValidationError({"start": ["Must be before end."]})
        return {"start": start, "end": end}


class _Figures(serializers.Serializer):
    items = serializers.IntegerField(help_text="Items with two reviews in the period.")
    percent_agreement = serializers.FloatField(
        allow_null=True, help_text="Share of items whose reviews agree (0-100), outputs included."
    )
    kappa = serializers.FloatField(
        allow_null=True,
        help_text="Cohen's kappa on verdicts; null without pairs or if all verdicts are one.",
    )
    median_seconds_per_item = serializers.FloatField(allow_null=True)


class AgreementSummarySerializer(_Figures):
    reviewed_items = serializers.IntegerField(help_text="Items with a review in the period.")
    adjudicated = serializers.IntegerField(help_text="Cases decided in the period.")
    verdict_agreement_percent = serializers.FloatField(
        allow_null=True, help_text="Share of pairs with the same verdict (kappa's p_o x 100)."
    )


class PairSerializer(_Figures):
    reviewer_a = serializers.CharField()
    reviewer_b = serializers.CharField()


class ControlAccuracySerializer(serializers.Serializer):
    reviewer = serializers.CharField()
    controls = serializers.IntegerField(help_text="Control reviews written in the period.")
    correct = serializers.IntegerField(help_text="Of those, giving the known answer.")
    accuracy = serializers.FloatField(allow_null=True)
    wilson_low = serializers.FloatField(allow_null=True, help_text="95% Wilson interval.")
    wilson_high = serializers.FloatField(allow_null=True)


class ReviewerSerializer(serializers.Serializer):
    reviewer = serializers.CharField()
    reviewer_id = serializers.IntegerField()
    reviews = serializers.IntegerField(help_text="Reviews written in the period.")
    paired_items = serializers.IntegerField()
    percent_agreement = serializers.FloatField(allow_null=True)
    adjudicated = serializers.IntegerField(help_text="Decided cases with one of their reviews.")
    overturned = serializers.IntegerField(help_text="Of those, decided against their review.")
    overturned_percent = serializers.FloatField(allow_null=True)
    median_seconds_per_item = serializers.FloatField(allow_null=True)
    controls = ControlAccuracySerializer(
        allow_null=True, help_text="Control accuracy in the period; null without control reviews."
    )


class RubricAgreementSerializer(serializers.Serializer):
    key = serializers.CharField(help_text="The criterion's key.")
    label = serializers.CharField()
    kind = serializers.CharField(help_text="scale, categorical or boolean.")
    level = serializers.CharField(
        help_text="Level of measurement alpha was computed at: nominal, ordinal, interval, ratio."
    )
    items = serializers.IntegerField(help_text="Items scored by two or more reviewers.")
    scores = serializers.IntegerField(help_text="Scores given in the period.")
    percent_agreement = serializers.FloatField(
        allow_null=True, help_text="Share of those items on which all scores are equal (0-100)."
    )
    alpha = serializers.FloatField(
        allow_null=True,
        help_text="Krippendorff's alpha at the level; null without two scores on one item or "
        "when every score is the same value.",
    )


class PreferenceSummarySerializer(serializers.Serializer):
    items = serializers.IntegerField(
        help_text="Comparisons with preferences from two or more reviewers in the period."
    )
    ratings = serializers.IntegerField(help_text="Preferences given on those comparisons.")
    reviewers = serializers.IntegerField(help_text="Reviewers who gave them.")
    percent_agreement = serializers.FloatField(
        allow_null=True, help_text="Share of those comparisons on which every preference is equal."
    )
    kappa = serializers.FloatField(
        allow_null=True,
        help_text="Fleiss' kappa over those comparisons (any number of reviewers each); "
        "categories: the candidate chosen (by submitted position), tie, all bad. Null without "
        "two preferences on one comparison or when all are one category.",
    )
    alpha = serializers.FloatField(
        allow_null=True, help_text="Krippendorff's alpha (nominal) over the same preferences."
    )
    categories = serializers.DictField(
        child=serializers.IntegerField(),
        help_text="Preferences per category: candidate_1 to candidate_4, tie, all_bad.",
    )


class PreferencePairSerializer(serializers.Serializer):
    reviewer_a = serializers.CharField()
    reviewer_b = serializers.CharField()
    items = serializers.IntegerField(help_text="Comparisons both gave a preference on.")
    percent_agreement = serializers.FloatField(allow_null=True)
    kappa = serializers.FloatField(
        allow_null=True,
        help_text="Cohen's kappa on their preferences (ties a category); null if undefined.",
    )


class PreferenceAgreementSerializer(serializers.Serializer):
    summary = PreferenceSummarySerializer()
    pairs = PreferencePairSerializer(many=True)


class AgreementPeriodSerializer(serializers.Serializer):
    """The half-open period [start, end) the figures cover."""

    start = serializers.DateTimeField()
    end = serializers.DateTimeField()


class AgreementSerializer(serializers.Serializer):
    project = serializers.CharField()
    period = AgreementPeriodSerializer()
    summary = AgreementSummarySerializer()
    confusion = serializers.DictField(
        child=serializers.DictField(child=serializers.IntegerField()),
        help_text="Verdict pairs: first review's verdict -> second review's verdict -> count.",
    )
    pairs = PairSerializer(many=True)
    reviewers = ReviewerSerializer(many=True)
    rubric = RubricAgreementSerializer(
        many=True, help_text="Agreement per rubric criterion, in the rubric's order."
    )
    preferences = PreferenceAgreementSerializer(
        help_text="Agreement on preferences (comparison items), ties counted as a category."
    )


class AgreementView(APIView):
    """Agreement between reviewers of one project over a period.

    Needs ``Capability.READ_AGREEMENT`` in the project (its seniors and admins,
    its API key, superusers): the figures name colleagues and their overturn
    rates. Any other project is a 404, whether it exists or not.
    """

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "start",
                OpenApiTypes.DATETIME,
                description="ISO 8601; default: 30 days before end. Must be before end.",
            ),
            OpenApiParameter(
                "end", OpenApiTypes.DATETIME, description="ISO 8601, exclusive; default: now."
            ),
            *COMMON_HEADERS,
        ],
        responses={200: AgreementSerializer, **error_responses(400, 401, 404, 429)},
    )
    def get(self, request, slug: str):
        readable = projects_where(request.user, Capability.READ_AGREEMENT)
        project = get_object_or_404(readable, slug=slug)
        period = PeriodSerializer(data=request.query_params)
        period.is_valid(raise_exception=True)
        figures = project_agreement(project=project, **period.validated_data)
        return Response(AgreementSerializer(figures).data)
