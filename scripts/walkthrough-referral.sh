#!/usr/bin/env bash
# A walk-through of the referral service with grpcurl, against a running suite: an
# institution is registered and licensed, files a complaint with the victim's consent,
# the prosecutor's office registers it; the Dispute Resolution Development centre refers
# a dispute for reconciliation, the institution accepts it, records a session and
# resolves it as reconciled. Then the notifications: the institution lists its own, an
# SMS gateway (a SERVICE token) follows the queued stream and acknowledges one delivered;
# and a moved deadline: a closure published on the registry's calendar over an open
# referral's last day moves its due time, and the timeline says why.
# Usage: scripts/walkthrough-referral.sh [registry] [referral] [data-dir] [token-command]
set -euo pipefail
reg=${1:-127.0.0.1:50051}
ref=${2:-127.0.0.1:50052}
data=${3:-data}
mint=${4:-target/release/mosharekat token}
admin=$(cat "$data/admin.token")

fail() { echo "walk-through: $*" >&2; exit 1; }
call() { # call TOKEN ADDR METHOD JSON
  grpcurl -plaintext -H "authorization: Bearer $1" -d "$4" "$2" "$3"
}
field() { sed -n "s/.*\"$1\": \"\\([^\"]*\\)\".*/\\1/p" | head -n1; }
now() { date -u +%Y-%m-%dT%H:%M:%SZ; }
officer=$($mint --role REGISTRY_OFFICER --subject registry-officer --key "$data/signing.key.pem")
centre=$($mint --role CENTER_OFFICER --subject centre-officer --key "$data/signing.key.pem")
clerk=$($mint --role JUDICIAL_OFFICER --subject prosecutor-clerk --key "$data/signing.key.pem")

inst=$(call "$officer" "$reg" mosharekat.registry.v1.RegistryService/CreateInstitution '{
  "request_id": "walk-institution",
  "institution": {"display_name": "انجمن حمایت از زنان و خانواده اردبیل", "kind": "INSTITUTION_KIND_NGO",
    "national_id": "10501234569", "registration_number": "۵۵", "registering_authority": "اداره ثبت",
    "province": "اردبیل", "city": "اردبیل",
    "activity_areas": ["ACTIVITY_AREA_WOMEN", "ACTIVITY_AREA_FAMILY", "ACTIVITY_AREA_RECONCILIATION"]}}' | field name)
[ -n "$inst" ] || fail "no institution"
id=${inst#institutions/}
lic=$(call "$officer" "$reg" mosharekat.registry.v1.RegistryService/CreateLicence "{
  \"parent\": \"$inst\", \"request_id\": \"walk-licence\",
  \"licence\": {\"activity_areas\": [\"ACTIVITY_AREA_WOMEN\", \"ACTIVITY_AREA_FAMILY\"],
    \"permitted_actions\": [\"PERMITTED_ACTION_FILE_COMPLAINT\", \"PERMITTED_ACTION_REPORT_CRIME\", \"PERMITTED_ACTION_ACCEPT_REFERRALS\"],
    \"province\": \"اردبیل\", \"valid_until\": \"2030-03-20T00:00:00Z\"}}" | field name)
state=$(call "$officer" "$reg" mosharekat.registry.v1.RegistryService/ApproveLicence "{\"name\": \"$lic\"}" | field state)
[ "$state" = LICENCE_STATE_ACTIVE ] || state=$(call "$officer" "$reg" mosharekat.registry.v1.RegistryService/GetLicence "{\"name\": \"$lic\"}" | field state)
[ "$state" = LICENCE_STATE_ACTIVE ] || fail "licence is $state"
agent=$($mint --role INSTITUTION --institution "$id" --subject agent --key "$data/signing.key.pem")

# The institution files a complaint directly, with the victim's recorded consent.
filing=$(call "$agent" "$ref" mosharekat.referral.v1.ReferralService/CreateFiling "{
  \"request_id\": \"walk-filing\",
  \"filing\": {\"kind\": \"FILING_KIND_COMPLAINT\", \"activity_area\": \"ACTIVITY_AREA_WOMEN\",
    \"authority\": \"دادسرای عمومی و انقلاب اردبیل\", \"province\": \"اردبیل\",
    \"subject\": \"شکایت از خشونت خانگی\", \"description\": \"به نمایندگی از بزه‌دیده\",
    \"parties\": [{\"full_name\": \"مریم احمدی\", \"role\": \"PARTY_ROLE_VICTIM\"}, {\"full_name\": \"متهم\", \"role\": \"PARTY_ROLE_ACCUSED\"}],
    \"consents\": [{\"party_index\": 0, \"given_by\": \"مریم احمدی\", \"basis\": \"CONSENT_BASIS_VICTIM\", \"time\": \"$(now)\",
      \"document\": {\"title\": \"رضایت‌نامه\", \"sha256\": \"$(printf consent | sha256sum | cut -c1-64)\", \"size_bytes\": 7, \"media_type\": \"application/pdf\"}}]}}" | field name)
[ -n "$filing" ] || fail "no filing"
call "$agent" "$ref" mosharekat.referral.v1.ReferralService/SubmitFiling "{\"name\": \"$filing\"}" | grep -q FILING_STATE_SUBMITTED || fail "not submitted"
call "$clerk" "$ref" mosharekat.referral.v1.ReferralService/RegisterFiling "{\"name\": \"$filing\", \"case_number\": \"۱۴۰۵-۷۷\"}" \
  | grep -q '"caseNumber": "1405-77"' || fail "not registered"

# The centre refers a dispute for reconciliation; the institution takes it through.
# Both parties agreed to reconciliation (art. 82): who, when, and the document's digest.
doc='{"title": "موافقت‌نامه", "sha256": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"}'
agreements="[{\"party_index\": 0, \"given_by\": \"حسن\", \"time\": \"$(now)\", \"document\": $doc}, {\"party_index\": 1, \"given_by\": \"رضا\", \"time\": \"$(now)\", \"document\": $doc}]"
referral=$(call "$centre" "$ref" mosharekat.referral.v1.ReferralService/CreateReferral "{
  \"request_id\": \"walk-referral\",
  \"referral\": {\"source\": \"REFERRAL_SOURCE_DISPUTE_RESOLUTION_CENTER\", \"source_case_number\": \"۹۸۷\",
    \"kind\": \"REFERRAL_KIND_RECONCILIATION\", \"activity_area\": \"ACTIVITY_AREA_FAMILY\", \"province\": \"اردبیل\",
    \"parties\": [{\"full_name\": \"حسن\", \"role\": \"PARTY_ROLE_DISPUTANT\"}, {\"full_name\": \"رضا\", \"role\": \"PARTY_ROLE_DISPUTANT\"}],
    \"agreements\": $agreements,
    \"summary\": \"اختلاف خانوادگی\", \"institution\": \"$inst\"}}" | field name)
[ -n "$referral" ] || fail "no referral"
call "$agent" "$ref" mosharekat.referral.v1.ReferralService/AcceptReferral "{\"name\": \"$referral\"}" | grep -q dueTime || fail "no due time"
call "$agent" "$ref" mosharekat.referral.v1.ReferralService/RecordProgress "{\"name\": \"$referral\",
  \"entry\": {\"session_time\": \"$(now)\", \"attendees\": [\"حسن\", \"رضا\"], \"notes\": \"جلسهٔ نخست\"}}" >/dev/null
call "$agent" "$ref" mosharekat.referral.v1.ReferralService/ResolveReferral "{\"name\": \"$referral\",
  \"outcome\": \"REFERRAL_OUTCOME_RECONCILED\", \"settlement_text\": \"صلح‌نامه\"}" | grep -q REFERRAL_STATE_RESOLVED || fail "not resolved"

# The institution lists its own notifications (the offer it was told of among them).
mine=$(call "$agent" "$ref" mosharekat.common.v1.NotificationService/ListNotifications "{\"resource\": \"$referral\"}")
echo "$mine" | grep -q '"recipientId": "'"$id"'"' || fail "the institution has no notification of $referral"
# An SMS gateway follows the queued stream from the start (after_sequence 0; after a
# restart it resumes from the last sequence it saw) and acknowledges one delivered.
gateway=$($mint --role SERVICE --service sms-gateway --subject sms-gateway --key "$data/signing.key.pem")
stream=$(grpcurl -plaintext -max-time 3 -H "authorization: Bearer $gateway" \
  -d '{"after_sequence": 0, "channel": "NOTIFICATION_CHANNEL_SMS"}' \
  "$ref" mosharekat.common.v1.NotificationService/StreamNotifications 2>/dev/null || true)
sms=$(echo "$stream" | field name)
[ -n "$sms" ] || fail "the gateway saw no queued SMS"
call "$gateway" "$ref" mosharekat.common.v1.NotificationService/AcknowledgeNotification \
  "{\"name\": \"$sms\", \"state\": \"NOTIFICATION_STATE_DELIVERED\"}" | grep -q NOTIFICATION_STATE_DELIVERED \
  || fail "$sms not acknowledged"

# A moved deadline: a second referral accepted, then Ardabil's courts closed on its last day.
open=$(call "$centre" "$ref" mosharekat.referral.v1.ReferralService/CreateReferral "{
  \"request_id\": \"walk-referral-2\",
  \"referral\": {\"source\": \"REFERRAL_SOURCE_DISPUTE_RESOLUTION_CENTER\", \"source_case_number\": \"۹۸۸\",
    \"kind\": \"REFERRAL_KIND_RECONCILIATION\", \"activity_area\": \"ACTIVITY_AREA_FAMILY\", \"province\": \"اردبیل\",
    \"parties\": [{\"full_name\": \"حسن\", \"role\": \"PARTY_ROLE_DISPUTANT\"}, {\"full_name\": \"رضا\", \"role\": \"PARTY_ROLE_DISPUTANT\"}],
    \"agreements\": $agreements,
    \"summary\": \"اختلاف همسایگی\", \"institution\": \"$inst\"}}" | field name)
[ -n "$open" ] || fail "no second referral"
due=$(call "$agent" "$ref" mosharekat.referral.v1.ReferralService/AcceptReferral "{\"name\": \"$open\"}" | jq -r '.referral.due.lastDay // empty')
[ -n "$due" ] || fail "no due day"
call "$admin" "$reg" mosharekat.registry.v1.CalendarService/PublishClosure "{\"request_id\": \"walk-closure\",
  \"province\": \"اردبیل\", \"first_day\": \"$due\", \"last_day\": \"$due\", \"reason\": \"گرمای شدید هوا\"}" >/dev/null
# The referral service follows the registry's calendar: wait for it to move the case.
for _ in $(seq 1 100); do
  now_due=$(call "$centre" "$ref" mosharekat.referral.v1.ReferralService/GetReferral "{\"name\": \"$open\"}")
  [ "$(echo "$now_due" | jq -r .referral.due.lastDay)" != "$due" ] && break
  sleep 0.2
done
[ "$(echo "$now_due" | jq -r .referral.due.lastDay)" != "$due" ] || fail "the due day $due did not move"
echo "$now_due" | grep -q 'گرمای شدید هوا' || fail "the move does not say why"
echo "walk-through: referral OK ($filing, $referral; $sms delivered; $open due after $due, moved)"
