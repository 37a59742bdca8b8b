# perflab device sampler (mksh / toybox sh). One long-lived process per cell, started in the
# background by perflab; it reads sysfs and procfs with shell builtins only (read, echo, case,
# mksh's builtin sleep): no process is forked per sample. Lines follow
# perflab/telemetry/samples.py. perflab fills the @…@ fields with quoted device paths.
IV=@INTERVAL_S@
PIDFILE=@PIDFILE@
GPU_FMT=@GPU_FMT@
GPU_BUSY=@GPU_BUSY@
GPU_FREQ=@GPU_FREQ@
BAT_CUR=@BAT_CUR@
BAT_VOLT=@BAT_VOLT@
BAT_CHARGE=@BAT_CHARGE@
BAT_TEMP=@BAT_TEMP@
BAT_STATUS=@BAT_STATUS@
FREQS=@FREQS@
ZONES=@ZONES@
trap 'exit 0' TERM INT HUP
echo "P $$"
for f in $GPU_BUSY $GPU_FREQ $BAT_CUR $BAT_VOLT $BAT_CHARGE $BAT_TEMP $BAT_STATUS; do
  [ -r "$f" ] || echo "E node $f is not readable"
done
[ -r "$GPU_BUSY" ] || { [ -n "$GPU_BUSY" ] && echo "E gpu $GPU_BUSY is not readable"; GPU_BUSY=; }
[ -n "$GPU_BUSY" ] || [ -n "$GPU_FMT" ] || echo "E gpu no GPU load node configured for this device"
[ -r "$BAT_CUR" ] || { echo "E bat $BAT_CUR is not readable"; BAT_CUR=; }
while :; do
  read -r up rest < /proc/uptime
  echo "T $up"
  while read -r name rest; do
    case $name in
      cpu*) echo "cpu $name $rest" ;;
      *) break ;;
    esac
  done < /proc/stat
  for f in $FREQS; do
    read -r v < "$f/scaling_cur_freq" && echo "freq ${f##*/} $v"
  done
  if [ -n "$GPU_BUSY" ] && read -r g1 g2 g3 < "$GPU_BUSY"; then
    case $GPU_FMT in
      kgsl_gpubusy) echo "gpu kgsl $g1 $g2" ;;
      mtk_ged) echo "gpu ged $g1 $g2 $g3" ;;
      *) echo "gpu pct ${g1%%%}" ;;
    esac
  fi
  [ -n "$GPU_FREQ" ] && read -r v rest < "$GPU_FREQ" && echo "gpufreq $v"
  if [ -n "$PIDFILE" ] && read -r pid < "$PIDFILE" && [ -r "/proc/$pid/status" ]; then
    while read -r k v u; do
      case $k in VmRSS:) echo "rss $v"; break ;; esac
    done < "/proc/$pid/status"
  fi
  while read -r k v u; do
    case $k in MemAvailable:) echo "mem $v"; break ;; esac
  done < /proc/meminfo
  for z in $ZONES; do
    read -r v < "${z#*=}/temp" && echo "tz ${z%%=*} $v"
  done
  if [ -n "$BAT_CUR" ]; then
    read -r c < "$BAT_CUR"; read -r vo < "$BAT_VOLT"; read -r q < "$BAT_CHARGE"
    read -r te < "$BAT_TEMP"; read -r st rest < "$BAT_STATUS"
    echo "bat ${c:-x} ${vo:-x} ${q:-x} ${te:-x} ${st:-Unknown}"
  fi
  read -r s1 s2 s3 s4 s5 s6 s7 s8 s9 s10 s11 s12 s13 ut stt rest < "/proc/$$/stat"
  echo "self $ut $stt 100"
  sleep "$IV"
done
