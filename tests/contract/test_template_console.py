"""Contract tests of the support console in template.yaml (issue #10): a private bucket read by
CloudFront only, a strict Content-Security-Policy (the same as the local mode's, but for the API and
Cognito origins), a public Cognito client with the code flow back to the console, the API accepting
the console's tokens and origin, and the outputs scripts/deploy_console.py reads."""

from __future__ import annotations

import re
from typing import Any

import pytest

from devtools.console import CONTENT_SECURITY_POLICY as LOCAL_POLICY
from tests.contract.test_template import _with_conditions, resources, template
from tests.contract.test_template_deploy import (
    CREATED,
    EXISTING,
    _created_resources,
    _deployed,
    _evaluate,
    _jwt_configuration,
    _outputs,
)

__all__ = ["resources", "template"]  # the fixtures, shared with test_template.py

CONSOLE_URL = "https://<ConsoleDistribution.DomainName>/"


def _directives(policy: str) -> dict[str, list[str]]:
    parsed = {}
    for directive in filter(None, (part.strip() for part in policy.split(";"))):
        name, *sources = directive.split()
        parsed[name] = sources
    return parsed


def _policy(template: dict[str, Any], given: dict[str, str]) -> dict[str, list[str]]:
    parameters, true = _deployed(template, given)
    conditions = {name: name in true for name in template["Conditions"]}
    headers = template["Resources"]["ConsoleHeadersPolicy"]["Properties"]["ResponseHeadersPolicyConfig"]
    csp = headers["SecurityHeadersConfig"]["ContentSecurityPolicy"]
    assert csp["Override"] is True
    return _directives(_evaluate(csp["ContentSecurityPolicy"], parameters, conditions))


def test_the_console_bucket_is_private_encrypted_and_tls_only(resources: dict[str, Any]) -> None:
    bucket = resources["ConsoleBucket"]["Properties"]
    assert bucket["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }
    assert bucket["OwnershipControls"] == {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]}
    assert "WebsiteConfiguration" not in bucket  # served by CloudFront only, never as a website
    (encryption,) = bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert encryption["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    statements = resources["ConsoleBucketPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    (tls,) = [s for s in statements if s["Effect"] == "Deny"]
    assert tls["Condition"] == {"Bool": {"aws:SecureTransport": "false"}} and tls["Action"] == "s3:*"


def test_only_the_console_distribution_may_read_the_bucket_and_only_its_objects(
    resources: dict[str, Any],
) -> None:
    statements = resources["ConsoleBucketPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    (read,) = [s for s in statements if s["Effect"] == "Allow"]
    assert read["Principal"] == {"Service": "cloudfront.amazonaws.com"}
    assert read["Action"] == "s3:GetObject"
    assert read["Resource"] == {"Fn::Sub": "${ConsoleBucket.Arn}/*"}
    assert read["Condition"] == {
        "StringEquals": {
            "AWS:SourceArn": {
                "Fn::Sub": "arn:${AWS::Partition}:cloudfront::${AWS::AccountId}"
                ":distribution/${ConsoleDistribution}"
            }
        }
    }


def test_cloudfront_signs_its_reads_with_origin_access_control_and_serves_https_only(
    resources: dict[str, Any],
) -> None:
    control = resources["ConsoleOriginAccessControl"]["Properties"]["OriginAccessControlConfig"]
    assert (
        control["OriginAccessControlOriginType"],
        control["SigningBehavior"],
        control["SigningProtocol"],
    ) == (
        "s3",
        "always",
        "sigv4",
    )
    config = resources["ConsoleDistribution"]["Properties"]["DistributionConfig"]
    (origin,) = config["Origins"]
    assert origin["DomainName"] == {"Fn::GetAtt": ["ConsoleBucket", "RegionalDomainName"]}
    assert origin["OriginAccessControlId"] == {"Fn::GetAtt": ["ConsoleOriginAccessControl", "Id"]}
    assert origin["S3OriginConfig"] == {"OriginAccessIdentity": ""}  # no legacy identity
    behaviour = config["DefaultCacheBehavior"]
    assert behaviour["ViewerProtocolPolicy"] == "redirect-to-https"
    assert behaviour["AllowedMethods"] == ["GET", "HEAD"]
    assert behaviour["ResponseHeadersPolicyId"] == {"Ref": "ConsoleHeadersPolicy"}
    assert config["DefaultRootObject"] == "index.html"
    assert "CacheBehaviors" not in config  # one behaviour: every file gets the headers policy


def test_the_security_headers_forbid_framing_sniffing_referrers_and_plain_http(
    resources: dict[str, Any],
) -> None:
    headers = resources["ConsoleHeadersPolicy"]["Properties"]["ResponseHeadersPolicyConfig"]
    security = headers["SecurityHeadersConfig"]
    assert security["FrameOptions"] == {"FrameOption": "DENY", "Override": True}
    assert security["ContentTypeOptions"] == {"Override": True}
    # The sign-in code comes back in the URL: no referrer ever carries it elsewhere.
    assert security["ReferrerPolicy"] == {"ReferrerPolicy": "no-referrer", "Override": True}
    assert security["StrictTransportSecurity"]["AccessControlMaxAgeSec"] >= 31536000


@pytest.mark.parametrize("given", [CREATED, EXISTING], ids=["own pool", "existing pool"])
def test_the_policy_allows_scripts_and_styles_of_the_console_only_and_nothing_inline(
    template: dict[str, Any], given: dict[str, str]
) -> None:
    policy = _policy(template, given)
    assert policy["default-src"] == ["'none'"]
    for directive in ("script-src", "style-src", "img-src", "font-src"):
        assert policy[directive] == ["'self'"], directive
    assert policy["frame-ancestors"] == ["'none'"] and policy["base-uri"] == ["'none'"]
    assert not any("unsafe" in source for sources in policy.values() for source in sources)


def test_the_policy_in_aws_is_the_local_modes_but_for_the_origins_the_page_calls(
    template: dict[str, Any],
) -> None:
    """So the browser tests, run against the local mode, run under the policy agents get."""
    aws, local = _policy(template, CREATED), _directives(LOCAL_POLICY)
    assert {k: v for k, v in aws.items() if k != "connect-src"} == {
        k: v for k, v in local.items() if k != "connect-src"
    }
    assert local["connect-src"] == ["'self'"]


def test_the_page_may_call_only_itself_the_regions_api_domain_and_the_sign_in_domain(
    template: dict[str, Any],
) -> None:
    own = _policy(template, CREATED)["connect-src"]
    assert own == [
        "'self'",
        "https://*.execute-api.eu-west-3.<AWS::URLSuffix>",
        "https://acme-loyalty-prod.auth.eu-west-3.amazoncognito.com",
    ]
    existing = _policy(template, {**EXISTING, "ConsoleSignInDomain": "https://auth.example.com"})
    assert existing["connect-src"][-1] == "https://auth.example.com"


def test_with_its_own_pool_the_console_signs_in_through_a_public_code_flow_client_back_to_its_url(
    template: dict[str, Any],
) -> None:
    created = _created_resources(template, CREATED)
    client = created["ConsoleClient"]["Properties"]
    assert client["UserPoolId"] == {"Ref": "UserPool"}
    assert client["GenerateSecret"] is False  # a page keeps no secret: PKCE instead
    assert client["AllowedOAuthFlowsUserPoolClient"] is True
    assert client["AllowedOAuthFlows"] == ["code"]  # no implicit flow: tokens never in the URL
    assert set(client["AllowedOAuthScopes"]) == {"openid", "email"}
    assert client["SupportedIdentityProviders"] == ["COGNITO"]
    assert (
        client["CallbackURLs"]
        == client["LogoutURLs"]
        == [{"Fn::Sub": "https://${ConsoleDistribution.DomainName}/"}]
    )
    assert client["AccessTokenValidity"] == {"Ref": "AccessTokenMinutes"}
    assert "ConsoleClient" not in _created_resources(template, EXISTING)


def test_the_api_accepts_the_consoles_tokens_with_the_stacks_own_pool(template: dict[str, Any]) -> None:
    assert "<ConsoleClient>" in _jwt_configuration(template, CREATED)["audience"]
    # With an existing pool, the operator lists that pool's console client in ExistingUserPoolClientIds.
    assert _jwt_configuration(template, EXISTING)["audience"] == EXISTING["ExistingUserPoolClientIds"].split(
        ","
    )


def test_the_api_lets_the_console_call_it_from_its_origin(template: dict[str, Any]) -> None:
    assert template["Conditions"]["AllowsAnyOrigin"] == {
        "Fn::Equals": [{"Fn::Join": [",", {"Ref": "CorsAllowedOrigins"}]}, "*"]
    }
    origins = template["Resources"]["LoyaltyApi"]["Properties"]["CorsConfiguration"]["AllowOrigins"]
    # "*" (the default) already admits the console's origin;
    assert _with_conditions(origins, {"AllowsAnyOrigin"}) == {"Ref": "CorsAllowedOrigins"}
    # a list of origins gets the console's added.
    delimiter, joined = _with_conditions(origins, set())["Fn::Split"]
    assert delimiter == ","
    assert joined["Fn::Sub"] == [
        "${Listed},https://${ConsoleDistribution.DomainName}",
        {"Listed": {"Fn::Join": [",", {"Ref": "CorsAllowedOrigins"}]}},
    ]


@pytest.mark.parametrize("given", [CREATED, EXISTING], ids=["own pool", "existing pool"])
def test_the_outputs_name_what_deploy_console_reads(template: dict[str, Any], given: dict[str, str]) -> None:
    outputs = _outputs(template, given)
    assert outputs["ConsoleUrl"] == CONSOLE_URL
    assert (outputs["ConsoleBucketName"], outputs["ConsoleDistributionId"]) == (
        "<ConsoleBucket>",
        "<ConsoleDistribution>",
    )
    if given is CREATED:
        assert outputs["ConsoleClientId"] == "<ConsoleClient>"
        assert outputs["ConsoleSignInDomain"] == "https://acme-loyalty-prod.auth.eu-west-3.amazoncognito.com"
        assert outputs["TokenUrl"] == f"{outputs['ConsoleSignInDomain']}/oauth2/token"
    else:
        assert not {"ConsoleClientId", "ConsoleSignInDomain"} & set(outputs)


def test_the_sign_in_domain_parameter_is_empty_or_an_https_origin(template: dict[str, Any]) -> None:
    pattern = re.compile(template["Parameters"]["ConsoleSignInDomain"]["AllowedPattern"])
    for accepted in ("", "https://auth.example.com", "https://acme.auth.eu-west-3.amazoncognito.com"):
        assert pattern.fullmatch(accepted), accepted
    for refused in (
        "http://auth.example.com",
        "https://auth.example.com/",
        "auth.example.com",
        "https://a b",
    ):
        assert not pattern.fullmatch(refused), refused
