#!/usr/bin/env bash
# The seed document's story with grpcurl, against a running suite on a fresh data folder:
# six institutions are registered and licensed; the Ardabil working group is seated and
# holds its first meeting with quorum; an institution files a complaint and reports a
# crime with the victim's consent; the Dispute Resolution Development centre refers a
# dispute for reconciliation, which the institution accepts, takes through two sessions
# and resolves as reconciled; the statistics show it; the institution's licence is
# suspended and its open referral is recalled (and its licence no longer verifies as in
# force, without a token, by the code on its certificate); the minutes are approved and
# exported. On the legal calendar: a closure of Ardabil's courts published late moves an
# open referral's last day, and a licence granted for two days gets its end's reminder.
# (tests/story.rs tells the same story to the three binaries as separate processes.)
# Usage: scripts/story.sh [registry] [referral] [meeting] [data-dir] [token-command]
set -euo pipefail
reg=${1:-127.0.0.1:50051}
ref=${2:-127.0.0.1:50052}
wg=${3:-127.0.0.1:50053}
data=${4:-data}
mint=${5:-target/release/mosharekat token}
key=$data/signing.key.pem

fail() { echo "story: $*" >&2; exit 1; }
call() { grpcurl -plaintext -H "authorization: Bearer $1" -d "$4" "$2" "$3"; }
# Without a token, from the proto files: where reflection needs a token too (production,
# the container check), grpcurl cannot learn the public record's methods from the server.
protos=$(dirname "$0")/../proto
public() { grpcurl -plaintext -import-path "$protos" -proto mosharekat/registry/v1/public_record.proto -d "$2" "$1" "$3"; }
field() { sed -n "s/.*\"$1\": \"\\([^\"]*\\)\".*/\\1/p" | head -n1; }
at() { date -u -d "$1" +%Y-%m-%dT%H:%M:%SZ; }
token() { $mint --key "$key" "$@"; }
officer=$(token --role REGISTRY_OFFICER --subject registry-officer)
sec=$(token --role SECRETARY --subject secretariat)
centre=$(token --role CENTER_OFFICER --subject centre-officer)
clerk=$(token --role JUDICIAL_OFFICER --subject prosecutor-clerk)
admin=$(token --role ADMIN --subject administrator)
R=mosharekat.registry.v1.RegistryService
F=mosharekat.referral.v1.ReferralService
M=mosharekat.meeting.v1.MeetingService

legal_id() { python3 -c "
d=[int(c) for c in '$1']; w=[29,27,23,19,17,29,27,23,19,17]
s=sum((x+d[9]+2)*k for x,k in zip(d,w))%11; print('$1'+str(0 if s==10 else s))"; }
national_code() { python3 -c "
n='$1'; s=sum(int(c)*(10-i) for i,c in enumerate(n))%11; print(n+str(s if s<2 else 11-s))"; }

echo "story: six institutions are registered and licensed"
institutions=() licences=()
for i in 1 2 3 4 5 6; do
  if [ $i = 1 ]; then
    areas='"ACTIVITY_AREA_WOMEN", "ACTIVITY_AREA_FAMILY"'
    actions='"PERMITTED_ACTION_FILE_COMPLAINT", "PERMITTED_ACTION_REPORT_CRIME", "PERMITTED_ACTION_ACCEPT_REFERRALS"'
  else
    areas='"ACTIVITY_AREA_FAMILY"' actions='"PERMITTED_ACTION_ACCEPT_REFERRALS"'
  fi
  inst=$(call "$officer" "$reg" $R/CreateInstitution "{\"request_id\": \"story-inst-$i\",
    \"institution\": {\"display_name\": \"انجمن همیاران خانواده $i\", \"kind\": \"INSTITUTION_KIND_NGO\",
      \"national_id\": \"$(legal_id "180${i}234567")\", \"registration_number\": \"$i\",
      \"registering_authority\": \"اداره ثبت\", \"province\": \"اردبیل\", \"city\": \"اردبیل\",
      \"activity_areas\": [$areas]}}" | field name)
  [ -n "$inst" ] || fail "institution $i not created"
  lic=$(call "$officer" "$reg" $R/CreateLicence "{\"parent\": \"$inst\", \"request_id\": \"story-lic-$i\",
    \"licence\": {\"activity_areas\": [$areas], \"permitted_actions\": [$actions],
      \"province\": \"اردبیل\", \"valid_until\": \"$(at '+3 years')\"}}" | field name)
  call "$officer" "$reg" $R/ApproveLicence "{\"name\": \"$lic\"}" >/dev/null
  call "$officer" "$reg" $R/GetLicence "{\"name\": \"$lic\"}" | grep -q LICENCE_STATE_ACTIVE || fail "licence $i not active"
  institutions+=("$inst") licences+=("$lic")
done
first=${institutions[0]}
agent=$(token --role INSTITUTION --institution "${first#institutions/}" --subject agent)

# A seventh institution licensed for two days only: every "days before" reminder of its
# end has gone by, so the most urgent is due at once. The registry's reminder loop sends it
# within REMINDER_INTERVAL (2 s in the local suite, 30 s by default); checked at the end.
brief=$(call "$officer" "$reg" $R/CreateInstitution "{\"request_id\": \"story-inst-7\",
  \"institution\": {\"display_name\": \"انجمن همیاران خانواده ۷\", \"kind\": \"INSTITUTION_KIND_NGO\",
    \"national_id\": \"$(legal_id 1807234567)\", \"registration_number\": \"7\",
    \"registering_authority\": \"اداره ثبت\", \"province\": \"اردبیل\", \"city\": \"اردبیل\",
    \"activity_areas\": [\"ACTIVITY_AREA_FAMILY\"]}}" | field name)
short=$(call "$officer" "$reg" $R/CreateLicence "{\"parent\": \"$brief\", \"request_id\": \"story-lic-7\",
  \"licence\": {\"activity_areas\": [\"ACTIVITY_AREA_FAMILY\"], \"permitted_actions\": [\"PERMITTED_ACTION_ACCEPT_REFERRALS\"],
    \"province\": \"اردبیل\", \"valid_until\": \"$(at '+2 days')\"}}" | field name)
[ -n "$short" ] || fail "the two-day licence was not created"
call "$officer" "$reg" $R/ApproveLicence "{\"name\": \"$short\"}" | grep -q '"lastDay"' \
  || fail "the two-day licence has no end on the legal calendar"

echo "story: anyone verifies the first licence by the code on its certificate, without a token"
code=$(call "$agent" "$reg" $R/ExportLicenceCertificate "{\"name\": \"${licences[0]}\"}" | field verificationCode)
[ -n "$code" ] || fail "no verification code on the certificate"
public "$reg" "{\"code\": \"$code\"}" mosharekat.registry.v1.PublicRecordService/VerifyLicence \
  | grep -q '"inForce": true' || fail "the licence does not verify as in force"

echo "story: the Ardabil working group is seated"
group=$(call "$sec" "$wg" $M/CreateWorkingGroup '{"request_id": "story-group",
  "working_group": {"province": "اردبیل", "title": "کارگروه استانی مشارکت و تعامل نهادهای مردمی با قوه قضائیه"}}' | field name)
[ -n "$group" ] || fail "no working group"
seat() { # seat N SEAT POSITION [INSTITUTION]
  call "$sec" "$wg" $M/SeatMember "{\"parent\": \"$group\", \"request_id\": \"story-seat-$1\",
    \"member\": {\"full_name\": \"عضو $1\", \"national_code\": \"$(national_code "$(printf %09d $((223450 + $1)))")\",
    \"seat\": \"$2\", \"position\": \"$3\", \"position_title\": \"$3\", \"institution\": \"${4:-}\"}}" | field name
}
members=("$(seat 0 SEAT_CHAIR POSITION_SOCIAL_PREVENTION_DEPUTY)")
i=1
for p in CHIEF_INSPECTOR PROSECUTOR_DEPUTY PRISONS_DIRECTOR_GENERAL DISPUTE_RESOLUTION_HEAD POPULAR_PARTICIPATION_DIRECTOR; do
  members+=("$(seat $i SEAT_OFFICIAL POSITION_$p)"); i=$((i+1))
done
for inst in "${institutions[@]}"; do
  members+=("$(seat $i SEAT_INSTITUTION_REPRESENTATIVE POSITION_INSTITUTION_REPRESENTATIVE "$inst")"); i=$((i+1))
done
secretary=$(seat 12 SEAT_SECRETARY POSITION_SECRETARIAT)
for m in "${members[@]}" "$secretary"; do [ -n "$m" ] || fail "a seat was not filled"; done

echo "story: a complaint and a crime report, each with the victim's consent"
file() { # file N KIND
  local f
  f=$(call "$agent" "$ref" $F/CreateFiling "{\"request_id\": \"story-filing-$1\",
    \"filing\": {\"kind\": \"$2\", \"activity_area\": \"ACTIVITY_AREA_WOMEN\",
      \"authority\": \"دادسرای عمومی و انقلاب اردبیل\", \"province\": \"اردبیل\",
      \"subject\": \"خشونت خانگی\", \"description\": \"به نمایندگی از بزه‌دیده\",
      \"parties\": [{\"full_name\": \"مریم احمدی\", \"national_code\": \"$(national_code "98765${1}111")\", \"role\": \"PARTY_ROLE_VICTIM\"},
                    {\"full_name\": \"متهم\", \"role\": \"PARTY_ROLE_ACCUSED\"}],
      \"consents\": [{\"party_index\": 0, \"given_by\": \"مریم احمدی\", \"basis\": \"CONSENT_BASIS_VICTIM\", \"time\": \"$(at now)\",
        \"document\": {\"title\": \"رضایت‌نامه\", \"sha256\": \"$(printf "consent $1" | sha256sum | cut -c1-64)\",
          \"size_bytes\": 9, \"media_type\": \"application/pdf\"}}]}}" | field name)
  [ -n "$f" ] || fail "filing $1 not created"
  call "$agent" "$ref" $F/SubmitFiling "{\"name\": \"$f\"}" | grep -q FILING_STATE_SUBMITTED || fail "filing $1 not submitted"
  echo "$f"
}
complaint=$(file 1 FILING_KIND_COMPLAINT)
file 2 FILING_KIND_CRIME_REPORT >/dev/null
call "$clerk" "$ref" $F/RegisterFiling "{\"name\": \"$complaint\", \"case_number\": \"۱۴۰۵-۸۸\"}" \
  | grep -q '"caseNumber": "1405-88"' || fail "the complaint was not registered"

echo "story: the centre refers a dispute; two sessions; reconciled"
# Both parties' agreement to reconciliation, with its document's digest (art. 82).
agreed=9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08
refer() { # refer N
  call "$centre" "$ref" $F/CreateReferral "{\"request_id\": \"story-referral-$1\",
    \"referral\": {\"source\": \"REFERRAL_SOURCE_DISPUTE_RESOLUTION_CENTER\", \"source_case_number\": \"۹۹$1\",
      \"kind\": \"REFERRAL_KIND_RECONCILIATION\", \"activity_area\": \"ACTIVITY_AREA_FAMILY\", \"province\": \"اردبیل\",
      \"parties\": [{\"full_name\": \"حسن\", \"role\": \"PARTY_ROLE_DISPUTANT\"}, {\"full_name\": \"رضا\", \"role\": \"PARTY_ROLE_DISPUTANT\"}],
      \"agreements\": [{\"party_index\": 0, \"given_by\": \"حسن\", \"time\": \"$(at "-1 day")\", \"document\": {\"title\": \"موافقت‌نامه\", \"sha256\": \"$agreed\"}}, {\"party_index\": 1, \"given_by\": \"رضا\", \"time\": \"$(at "-1 day")\", \"document\": {\"title\": \"موافقت‌نامه\", \"sha256\": \"$agreed\"}}],
      \"summary\": \"اختلاف خانوادگی\", \"institution\": \"$first\"}}" | field name
}
case=$(refer 1)
[ -n "$case" ] || fail "no referral"
call "$agent" "$ref" $F/AcceptReferral "{\"name\": \"$case\"}" | grep -q dueTime || fail "not accepted"
for s in 1 2; do
  call "$agent" "$ref" $F/RecordProgress "{\"name\": \"$case\",
    \"entry\": {\"session_time\": \"$(at "-$((3 - s)) hours")\", \"attendees\": [\"حسن\", \"رضا\"], \"notes\": \"جلسهٔ $s\"}}" >/dev/null
done
call "$agent" "$ref" $F/ResolveReferral "{\"name\": \"$case\", \"outcome\": \"REFERRAL_OUTCOME_RECONCILED\",
  \"settlement_text\": \"صلح‌نامه\"}" | grep -q REFERRAL_STATE_RESOLVED || fail "not resolved"
stats=$(call "$admin" "$ref" $F/GetStatistics "{\"province\": \"اردبیل\", \"start_time\": \"$(at '-30 days')\", \"end_time\": \"$(at '+1 day')\"}")
grep -q '"resolvedCount": "1"' <<<"$stats" || fail "the statistics do not show the resolution: $stats"
grep -q '"reconciliationRate": 1' <<<"$stats" || fail "the reconciliation rate is not 1: $stats"

echo "story: the group's first meeting, with quorum and a resolution"
meeting=$(call "$sec" "$wg" $M/ScheduleMeeting "{\"parent\": \"$group\", \"request_id\": \"story-meeting-1\",
  \"meeting\": {\"title\": \"نخستین جلسهٔ کارگروه\", \"place\": \"دادگستری استان اردبیل\", \"scheduled_time\": \"$(at '+1 day')\"}}" | field name)
case "$meeting" in */meetings/1) ;; *) fail "the first meeting is not number 1: $meeting" ;; esac
call "$sec" "$wg" $M/SetAgenda "{\"name\": \"$meeting\", \"items\": [
  {\"title\": \"گزارش ارجاع‌ها و پرونده‌ها\", \"standing_report\": true},
  {\"title\": \"گزارش نخستین صلح\", \"subject\": \"$case\"}]}" >/dev/null
call "$sec" "$wg" $M/FinalizeAgenda "{\"name\": \"$meeting\"}" | grep -q '"figures"' || fail "no standing report figures"
attendance=""
for m in "${members[@]:0:9}"; do attendance+="{\"member\": \"$m\", \"status\": \"ATTENDANCE_STATUS_PRESENT\"},"; done
attendance+="{\"member\": \"$secretary\", \"status\": \"ATTENDANCE_STATUS_PRESENT\"}"
call "$sec" "$wg" $M/RecordAttendance "{\"name\": \"$meeting\", \"attendance\": [$attendance]}" | grep -q '"met": true' || fail "no quorum"
call "$sec" "$wg" $M/StartMeeting "{\"name\": \"$meeting\"}" | grep -q MEETING_STATE_IN_SESSION || fail "not started"
# The second item is the first institution's referral: its representative is recused for it.
call "$sec" "$wg" $M/GetMeeting "{\"name\": \"$meeting\"}" | grep -q '"automatic": true' || fail "no recusal"
if call "$sec" "$wg" $M/RecordResolution "{\"name\": \"$meeting\", \"text\": \"تقدیر از نهاد\",
  \"responsible_body\": \"دبیرخانه\", \"agenda_item\": 2,
  \"votes\": [{\"member\": \"${members[6]}\", \"vote\": \"VOTE_FOR\"}]}" >/dev/null 2>&1; then
  fail "a recused member voted"
fi
votes=""
for m in "${members[@]:0:9}"; do votes+="{\"member\": \"$m\", \"vote\": \"VOTE_FOR\"},"; done
call "$sec" "$wg" $M/RecordResolution "{\"name\": \"$meeting\", \"request_id\": \"story-res-1\",
  \"text\": \"ایجاد سامانهٔ ارجاع پرونده به نهادهای مردمی\", \"responsible_member\": \"${members[4]}\",
  \"deadline\": \"$(at '+90 days')\", \"votes\": [${votes%,}]}" | grep -q '"adopted": true' || fail "resolution not adopted"

echo "story: the licence is suspended; the open referral is recalled"
open=$(refer 2)
due=$(call "$agent" "$ref" $F/AcceptReferral "{\"name\": \"$open\"}" | jq -r '.referral.due.lastDay // empty')
[ -n "$due" ] || fail "the accepted referral has no last day"
# Ardabil's courts closed on that day, published late: the referral service follows the
# registry's calendar and moves the last day to the next open day, saying why.
call "$admin" "$reg" mosharekat.registry.v1.CalendarService/PublishClosure "{\"request_id\": \"story-closure\",
  \"province\": \"اردبیل\", \"first_day\": \"$due\", \"last_day\": \"$due\", \"reason\": \"گرمای شدید هوا\"}" >/dev/null
for _ in $(seq 100); do
  moved=$(call "$centre" "$ref" $F/GetReferral "{\"name\": \"$open\"}" | jq -r '.referral.due.lastDay')
  [ "$moved" != "$due" ] && break
  sleep 0.2
done
[ "$moved" != "$due" ] || fail "the last day $due did not move for the closure"
call "$centre" "$ref" $F/GetReferral "{\"name\": \"$open\"}" | grep -q 'گرمای شدید هوا' || fail "the move does not say why"
echo "story: the closure moved the referral's last day from $due to $moved"
call "$officer" "$reg" $R/SuspendLicence "{\"name\": \"${licences[0]}\", \"reason\": \"عدم ارائهٔ گزارش سالانه\"}" \
  | grep -q LICENCE_STATE_SUSPENDED || fail "not suspended"
for _ in $(seq 100); do
  call "$centre" "$ref" $F/GetReferral "{\"name\": \"$open\"}" | grep -q REFERRAL_STATE_RECALLED && break
  sleep 0.2
done
call "$centre" "$ref" $F/GetReferral "{\"name\": \"$open\"}" | grep -q REFERRAL_STATE_RECALLED || fail "the referral was not recalled"
public "$reg" "{\"code\": \"$code\"}" mosharekat.registry.v1.PublicRecordService/VerifyLicence \
  | grep -q LICENCE_STATE_SUSPENDED || fail "the suspended licence still verifies"

echo "story: the minutes are approved and exported"
call "$sec" "$wg" $M/ApproveMinutes "{\"name\": \"$meeting\", \"discussion\": \"گزارش دبیر و بحث اعضا\"}" \
  | grep -q MEETING_STATE_CLOSED || fail "minutes not approved"
call "$sec" "$wg" $M/VerifyMinutes "{\"name\": \"$meeting\"}" | grep -q '"intact": true' || fail "minutes hash"
html=$(call "$sec" "$wg" $M/ExportMinutes "{\"name\": \"$meeting\"}")
grep -q 'dir=\\"rtl\\"' <<<"$html" || fail "the minutes are not right-to-left"
sha=$(call "$sec" "$wg" $M/GetMeeting "{\"name\": \"$meeting\"}" | field contentSha256)
chair=$(token --role MEMBER --member "${members[0]##*/}" --subject chair)
call "$chair" "$wg" $M/SignMinutes "{\"name\": \"$meeting\", \"content_sha256\": \"$sha\"}" \
  | grep -q '"signTime"' || fail "the chair did not sign"
echo "story: the two-day licence's reminder"
reminded=""
for _ in $(seq 300); do
  reminded=$(call "$officer" "$reg" mosharekat.common.v1.NotificationService/ListNotifications "{\"resource\": \"$short\"}" \
    | grep -o '"text": "[^"]*به سر می‌رسد[^"]*"' || true)
  [ -n "$reminded" ] && break
  sleep 0.2
done
[ -n "$reminded" ] || fail "no reminder of the end of $short within 60 s"
echo "story: reminder sent: $reminded"
echo "story: OK ($meeting, $case recalled: $open)"
