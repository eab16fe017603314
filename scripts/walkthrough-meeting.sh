#!/usr/bin/env bash
# A walk-through of the meeting service with grpcurl, against a running suite: the
# Ardabil working group is seated (chair, five officials, six representatives of licensed
# institutions, a secretary) and holds its first meeting: agenda with the standing
# report, attendance, quorum (a representative recused for the item about their
# institution), a resolution, the draft minutes reviewed, approved and signed by the
# chair, exported as Persian HTML; and a licence for two days only, whose end's reminder
# is sent at once.
# Usage: scripts/walkthrough-meeting.sh [registry] [meeting] [data-dir] [token-command]
set -euo pipefail
reg=${1:-127.0.0.1:50051}
wg=${2:-127.0.0.1:50053}
data=${3:-data}
mint=${4:-target/release/mosharekat token}

fail() { echo "walk-through: $*" >&2; exit 1; }
call() { grpcurl -plaintext -H "authorization: Bearer $1" -d "$4" "$2" "$3"; }
field() { sed -n "s/.*\"$1\": \"\\([^\"]*\\)\".*/\\1/p" | head -n1; }
officer=$($mint --role REGISTRY_OFFICER --subject registry-officer --key "$data/signing.key.pem")
sec=$($mint --role SECRETARY --subject secretariat --key "$data/signing.key.pem")
later=$(date -u -d '+1 day' +%Y-%m-%dT%H:%M:%SZ)
deadline=$(date -u -d '+90 days' +%Y-%m-%dT%H:%M:%SZ)

# Six licensed institutions (national IDs completed with their check digit).
check_digit() { python3 -c "
d=[int(c) for c in '$1']; w=[29,27,23,19,17,29,27,23,19,17]
s=sum((x+d[9]+2)*k for x,k in zip(d,w))%11; print(0 if s==10 else s)"; }
institutions=()
for i in 1 2 3 4 5 6; do
  ten="170${i}234567"
  inst=$(call "$officer" "$reg" mosharekat.registry.v1.RegistryService/CreateInstitution "{
    \"request_id\": \"wg-inst-$i\",
    \"institution\": {\"display_name\": \"نهاد همکار $i\", \"kind\": \"INSTITUTION_KIND_CHARITY\",
      \"national_id\": \"$ten$(check_digit "$ten")\", \"registration_number\": \"$i\", \"registering_authority\": \"اداره ثبت\",
      \"province\": \"اردبیل\", \"city\": \"اردبیل\", \"activity_areas\": [\"ACTIVITY_AREA_FAMILY\"]}}" | field name)
  [ -n "$inst" ] || fail "institution $i not created"
  lic=$(call "$officer" "$reg" mosharekat.registry.v1.RegistryService/CreateLicence "{\"parent\": \"$inst\", \"request_id\": \"wg-lic-$i\",
    \"licence\": {\"activity_areas\": [\"ACTIVITY_AREA_FAMILY\"], \"permitted_actions\": [\"PERMITTED_ACTION_ACCEPT_REFERRALS\"],
    \"province\": \"اردبیل\", \"valid_until\": \"2030-03-20T00:00:00Z\"}}" | field name)
  call "$officer" "$reg" mosharekat.registry.v1.RegistryService/ApproveLicence "{\"name\": \"$lic\"}" >/dev/null 2>&1 || true
  institutions+=("$inst")
done

group=$(call "$sec" "$wg" mosharekat.meeting.v1.MeetingService/CreateWorkingGroup '{"request_id": "wg-ardabil",
  "working_group": {"province": "اردبیل", "title": "کارگروه استانی مشارکت و تعامل نهادهای مردمی با قوه قضائیه"}}' | field name)
[ -n "$group" ] || fail "no working group"

national_code() { python3 -c "
n='$1'; s=sum(int(c)*(10-i) for i,c in enumerate(n))%11; print(n+str(s if s<2 else 11-s))"; }
seat() { # seat N SEAT POSITION TITLE [INSTITUTION]
  call "$sec" "$wg" mosharekat.meeting.v1.MeetingService/SeatMember "{\"parent\": \"$group\", \"request_id\": \"wg-seat-$1\",
    \"member\": {\"full_name\": \"عضو $1\", \"national_code\": \"$(national_code "$(printf %09d $((123450 + $1)))")\", \"seat\": \"$2\",
    \"position\": \"$3\", \"position_title\": \"$4\", \"institution\": \"${5:-}\"}}" | field name
}
members=()
members+=("$(seat 0 SEAT_CHAIR POSITION_SOCIAL_PREVENTION_DEPUTY 'معاون اجتماعی و پیشگیری از وقوع جرم دادگستری استان')")
i=1
for p in CHIEF_INSPECTOR PROSECUTOR_DEPUTY PRISONS_DIRECTOR_GENERAL DISPUTE_RESOLUTION_HEAD POPULAR_PARTICIPATION_DIRECTOR; do
  members+=("$(seat $i SEAT_OFFICIAL POSITION_$p "$p")"); i=$((i+1))
done
for inst in "${institutions[@]}"; do
  members+=("$(seat $i SEAT_INSTITUTION_REPRESENTATIVE POSITION_INSTITUTION_REPRESENTATIVE 'نماینده' "$inst")"); i=$((i+1))
done
secretary=$(seat 12 SEAT_SECRETARY POSITION_SECRETARIAT 'دبیر کارگروه')
[ "${#members[@]}" = 12 ] && [ -n "$secretary" ] || fail "not every seat was filled"

meeting=$(call "$sec" "$wg" mosharekat.meeting.v1.MeetingService/ScheduleMeeting "{\"parent\": \"$group\", \"request_id\": \"wg-meeting-1\",
  \"meeting\": {\"title\": \"نخستین جلسهٔ کارگروه\", \"place\": \"دادگستری استان اردبیل\", \"scheduled_time\": \"$later\"}}" | field name)
case "$meeting" in */meetings/1) ;; *) fail "the first meeting is not number 1: $meeting" ;; esac
call "$sec" "$wg" mosharekat.meeting.v1.MeetingService/SetAgenda "{\"name\": \"$meeting\", \"items\": [
  {\"title\": \"گزارش ارجاع‌ها و پرونده‌ها\", \"standing_report\": true},
  {\"title\": \"معرفی نهاد همکار\", \"subject\": \"${institutions[0]}\"}]}" >/dev/null
call "$sec" "$wg" mosharekat.meeting.v1.MeetingService/FinalizeAgenda "{\"name\": \"$meeting\"}" | grep -q '"agendaFinal": true' || fail "agenda not final"

attendance=""
for m in "${members[@]:0:9}"; do attendance+="{\"member\": \"$m\", \"status\": \"ATTENDANCE_STATUS_PRESENT\"},"; done
attendance+="{\"member\": \"$secretary\", \"status\": \"ATTENDANCE_STATUS_PRESENT\"}"
call "$sec" "$wg" mosharekat.meeting.v1.MeetingService/RecordAttendance "{\"name\": \"$meeting\", \"attendance\": [$attendance]}" \
  | grep -q '"met": true' || fail "no quorum"
call "$sec" "$wg" mosharekat.meeting.v1.MeetingService/StartMeeting "{\"name\": \"$meeting\"}" | grep -q MEETING_STATE_IN_SESSION || fail "not started"
# The second item is about the first institution: its representative is recused for it.
call "$sec" "$wg" mosharekat.meeting.v1.MeetingService/GetMeeting "{\"name\": \"$meeting\"}" | grep -q '"automatic": true' || fail "no recusal"
votes=""
for m in "${members[@]:0:9}"; do votes+="{\"member\": \"$m\", \"vote\": \"VOTE_FOR\"},"; done
call "$sec" "$wg" mosharekat.meeting.v1.MeetingService/RecordResolution "{\"name\": \"$meeting\", \"request_id\": \"wg-res-1\",
  \"text\": \"ایجاد سامانهٔ ارجاع پرونده به نهادهای مردمی\", \"responsible_member\": \"${members[4]}\",
  \"deadline\": \"$deadline\", \"votes\": [${votes%,}]}" | grep -q '"adopted": true' || fail "resolution not adopted"
# The draft is opened for comment, commented on by an attendee, closed; then approved.
call "$sec" "$wg" mosharekat.meeting.v1.MeetingService/OpenMinutesReview "{\"name\": \"$meeting\", \"discussion\": \"گزارش دبیر و بحث اعضا\"}" \
  | grep -q MINUTES_REVIEW_STATE_OPEN || fail "the minutes were not opened for comment"
member() { $mint --role MEMBER --member "${1##*/}" --subject "member-${1##*/}" --key "$data/signing.key.pem"; }
call "$(member "${members[1]}")" "$wg" mosharekat.meeting.v1.MeetingService/CommentOnMinutes "{\"name\": \"$meeting\", \"text\": \"موافقم\"}" \
  | grep -q '"comments"' || fail "no comment"
call "$sec" "$wg" mosharekat.meeting.v1.MeetingService/CloseMinutesReview "{\"name\": \"$meeting\"}" \
  | grep -q MINUTES_REVIEW_STATE_CLOSED || fail "the comment window was not closed"
call "$sec" "$wg" mosharekat.meeting.v1.MeetingService/ApproveMinutes "{\"name\": \"$meeting\"}" \
  | grep -q MEETING_STATE_CLOSED || fail "minutes not approved"
sha=$(call "$sec" "$wg" mosharekat.meeting.v1.MeetingService/GetMeeting "{\"name\": \"$meeting\"}" | field contentSha256)
call "$(member "${members[0]}")" "$wg" mosharekat.meeting.v1.MeetingService/SignMinutes "{\"name\": \"$meeting\", \"content_sha256\": \"$sha\"}" \
  | grep -q '"signTime"' || fail "the chair did not sign"
call "$sec" "$wg" mosharekat.meeting.v1.MeetingService/VerifyMinutes "{\"name\": \"$meeting\"}" | grep -q '"intact": true' || fail "minutes hash"
html=$(call "$sec" "$wg" mosharekat.meeting.v1.MeetingService/ExportMinutes "{\"name\": \"$meeting\"}")
grep -q 'dir=\\"rtl\\"' <<<"$html" || fail "the minutes are not right-to-left"

# A reminder: a seventh institution is licensed for two days only (its end counted on the
# legal calendar), so every "days before" reminder of its end has already gone by and the
# most urgent, seven days before, is sent at once by the registry's reminder loop
# (REMINDER_INTERVAL) to the institution; the registry's officers see it.
ten=1707234567
brief=$(call "$officer" "$reg" mosharekat.registry.v1.RegistryService/CreateInstitution "{
  \"request_id\": \"wg-inst-7\",
  \"institution\": {\"display_name\": \"نهاد همکار ۷\", \"kind\": \"INSTITUTION_KIND_CHARITY\",
    \"national_id\": \"$ten$(check_digit "$ten")\", \"registration_number\": \"7\", \"registering_authority\": \"اداره ثبت\",
    \"province\": \"اردبیل\", \"city\": \"اردبیل\", \"activity_areas\": [\"ACTIVITY_AREA_FAMILY\"]}}" | field name)
short=$(call "$officer" "$reg" mosharekat.registry.v1.RegistryService/CreateLicence "{\"parent\": \"$brief\", \"request_id\": \"wg-lic-7\",
  \"licence\": {\"activity_areas\": [\"ACTIVITY_AREA_FAMILY\"], \"permitted_actions\": [\"PERMITTED_ACTION_ACCEPT_REFERRALS\"],
  \"province\": \"اردبیل\", \"valid_until\": \"$(date -u -d '+2 days' +%Y-%m-%dT%H:%M:%SZ)\"}}" | field name)
[ -n "$short" ] || fail "the two-day licence was not created"
call "$officer" "$reg" mosharekat.registry.v1.RegistryService/ApproveLicence "{\"name\": \"$short\"}" | grep -q '"lastDay"' \
  || fail "the approved licence has no end on the legal calendar"
reminded=""
for _ in $(seq 100); do
  reminded=$(call "$officer" "$reg" mosharekat.common.v1.NotificationService/ListNotifications "{\"resource\": \"$short\"}" \
    | grep -o '"text": "[^"]*به سر می‌رسد[^"]*"' || true)
  [ -n "$reminded" ] && break
  sleep 0.2
done
[ -n "$reminded" ] || fail "no reminder of the end of $short within 20 s"
echo "walk-through: reminder sent: $reminded"
echo "walk-through: meeting OK ($meeting)"
