"""Interface text in Russian (working language), Kazakh (state language) and English, and number
and time formatting per language through Babel."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from babel.numbers import format_decimal, format_percent

__all__ = [
    "LANGS", "t", "label", "weekday", "fmt_int", "fmt_pct", "fmt_local_time", "fmt_age", "fmt_minutes",
    "fmt_change",
]  # fmt: skip

LANGS = ("ru", "kk", "en")

_TEXT: dict[str, dict[str, str]] = {
    "title": {"ru": "Дозор", "kk": "Дозор", "en": "Dozor"},
    "violations": {"ru": "Нарушения ПДД", "kk": "ЖҚЕ бұзушылықтары", "en": "Traffic violations"},
    "last_minute": {"ru": "за минуту", "kk": "соңғы минутта", "en": "last minute"},
    "today": {"ru": "сегодня", "kk": "бүгін", "en": "today"},
    "yesterday": {"ru": "вчера к этому часу", "kk": "кеше осы уақытқа дейін", "en": "yesterday by now"},
    "city": {"ru": "Город", "kk": "Қала", "en": "City"},
    "vs_yesterday": {"ru": "к вчера", "kk": "кешемен", "en": "vs yesterday"},
    "all_cities": {"ru": "Все города", "kk": "Барлық қалалар", "en": "All cities"},
    "updated": {"ru": "Данные на", "kk": "Деректер уақыты", "en": "Data as of"},
    "stale": {
        "ru": "ДАННЫЕ УСТАРЕЛИ: последнее событие {age} назад",
        "kk": "ДЕРЕКТЕР ЕСКІРДІ: соңғы оқиға {age} бұрын",
        "en": "DATA STALE: newest event {age} ago",
    },
    "feed_stopped": {
        "ru": "ПОТОК ДАННЫХ ОСТАНОВЛЕН: последний сигнал обработчика {age} назад",
        "kk": "ДЕРЕКТЕР АҒЫНЫ ТОҚТАДЫ: өңдеушінің соңғы белгісі {age} бұрын",
        "en": "DATA FEED STOPPED: the workers' last heartbeat {age} ago",
    },
    "no_data": {"ru": "Нет данных за сегодня", "kk": "Бүгінге деректер жоқ", "en": "No data today"},
    "ch_down": {
        "ru": "Нет связи с хранилищем ClickHouse. Показаны последние полученные данные ({at}).",
        "kk": "ClickHouse қоймасымен байланыс жоқ. Соңғы алынған деректер көрсетілген ({at}).",
        "en": "ClickHouse is unreachable. Showing the last figures received ({at}).",
    },
    "ch_down_nothing": {
        "ru": "Нет связи с хранилищем ClickHouse; данных пока нет.",
        "kk": "ClickHouse қоймасымен байланыс жоқ; деректер әлі жоқ.",
        "en": "ClickHouse is unreachable; no figures yet.",
    },
    "last_hour": {"ru": "за час", "kk": "соңғы сағатта", "en": "last hour"},
    "incidents_open": {"ru": "открытые происшествия", "kk": "ашық оқиғалар", "en": "open incidents"},
    "units": {
        "ru": "наряды: в пути · на месте · свободны",
        "kk": "жасақтар: жолда · орнында · бос",
        "en": "units: en route · on scene · free",
    },  # fmt: skip
    "units_short": {"ru": "Наряды", "kk": "Жасақтар", "en": "Units"},
    "response": {"ru": "прибытие: медиана / 90%", "kk": "келу: медиана / 90%", "en": "arrival: median / p90"},
    "within_target": {"ru": "в нормативе", "kk": "нормативте", "en": "within target"},
    "district": {"ru": "Район", "kk": "Аудан", "en": "District"},
    "no_district": {"ru": "без района", "kk": "ауданы жоқ", "en": "no district"},
    "incidents_today": {"ru": "происшествий сегодня", "kk": "бүгінгі оқиғалар", "en": "incidents today"},
    "open_now": {"ru": "открыто", "kk": "ашық", "en": "open"},
    "alerts": {"ru": "Тревоги", "kk": "Дабылдар", "en": "Alerts"},
    "no_alerts": {"ru": "Тревог нет", "kk": "Дабыл жоқ", "en": "No alerts"},
    "refused_city": {
        "ru": "Нет доступа: {city} вне вашей зоны ответственности. Попытка записана в журнал.",
        "kk": "Рұқсат жоқ: {city} сіздің жауапкершілік аймағыңыздан тыс. Әрекет журналға жазылды.",
        "en": "Access refused: {city} is outside your scope. The attempt has been recorded.",
    },
    "map": {"ru": "Последние 15 минут", "kk": "Соңғы 15 минут", "en": "Last 15 minutes"},
    "alert_violations_spike": {
        "ru": "Всплеск нарушений: {observed} за минуту (обычно {baseline})",
        "kk": "Бұзушылықтар күрт өсті: минутына {observed} (әдетте {baseline})",
        "en": "Violations spike: {observed} in a minute (usually {baseline})",
    },
    "alert_incidents_spike": {
        "ru": "Всплеск происшествий: {observed} за минуту (обычно {baseline})",
        "kk": "Оқиғалар күрт өсті: минутына {observed} (әдетте {baseline})",
        "en": "Incidents spike: {observed} in a minute (usually {baseline})",
    },
    "alert_incident_waiting": {
        "ru": "Происшествие ждёт наряд: приоритет {priority}, более {minutes} мин",
        "kk": "Оқиға жасақты күтуде: басымдық {priority}, {minutes} минуттан астам",
        "en": "Incident waiting for a unit: priority {priority}, over {minutes} min",
    },
    "col_minute": {"ru": "мин", "kk": "мин", "en": "min"},
    "col_hour": {"ru": "час", "kk": "сағ", "en": "hour"},
    "col_response": {"ru": "прибытие", "kk": "келу", "en": "arrival"},
    "minutes": {"ru": "мин", "kk": "мин", "en": "min"},
    "seconds": {"ru": "с", "kk": "с", "en": "s"},
    "ch_failed_at": {"ru": "данные на {at}", "kk": "деректер уақыты {at}", "en": "figures as of {at}"},
    "as_of": {"ru": "на", "kk": "уақыты", "en": "as of"},
    "waiting": {
        "ru": "ждут наряд · сверх норматива",
        "kk": "жасақ күтуде · нормативтен тыс",
        "en": "waiting for a unit · past target",
    },
    "waiting_list": {"ru": "Ждут наряд", "kk": "Жасақ күтуде", "en": "Waiting for a unit"},
    "no_waiting": {
        "ru": "Все происшествия с нарядом",
        "kk": "Барлық оқиғаларда жасақ бар",
        "en": "Every incident has a unit",
    },
    "calls_102": {
        "ru": "102: ждут · дольше всех",
        "kk": "102: күтуде · ең ұзақ",
        "en": "102: waiting · longest",
    },  # fmt: skip
    "answered_15": {
        "ru": "{pct} ответов за 15 с (час)",
        "kk": "{pct} жауап 15 с ішінде (сағ)",
        "en": "{pct} answered in 15 s (hour)",
    },
    "no_answers_hour": {"ru": "ответов за час нет", "kk": "сағатта жауап жоқ", "en": "no answers this hour"},
    "answering_102": {
        "ru": "102: ответ на вызовы (по часу поступления)",
        "kk": "102: қоңырауларға жауап (түскен сағаты бойынша)",
        "en": "102: calls answered (by the hour offered)",
    },
    "answering_note": {
        "ru": "Время ответа — от поступления вызова в очередь до ответа оператора. Нормативы: NENA — "
        "90 % за 15 с и 95 % за 20 с; NFPA 1225 — 90 % за 10 с. Пропущенные — абонент положил "
        "трубку до ответа.",
        "kk": "Жауап уақыты — қоңырау кезекке түскеннен оператор жауап бергенге дейін. Нормативтер: NENA — "
        "90 % 15 с ішінде және 95 % 20 с ішінде; NFPA 1225 — 90 % 10 с ішінде. Жіберілгендер — "
        "абонент жауапқа дейін тұтқаны қойған.",
        "en": "Answer time runs from the call entering the queue to an operator answering. Standards: "
        "NENA 90 % within 15 s and 95 % within 20 s; NFPA 1225 90 % within 10 s. Abandoned: the "
        "caller hung up before an answer.",
    },  # fmt: skip
    "col_offered": {"ru": "поступило", "kk": "түсті", "en": "offered"},
    "col_answered": {"ru": "отвечено", "kk": "жауап берілді", "en": "answered"},
    "col_abandoned": {"ru": "пропущено", "kk": "жіберілді", "en": "abandoned"},
    "col_answer": {"ru": "ответ", "kk": "жауап", "en": "answer"},
    "col_within_s": {"ru": "за {s} с, %", "kk": "{s} с ішінде, %", "en": "within {s} s, %"},
    "daily_within": {
        "ru": "Доля ответов в норматив по дням",
        "kk": "Күн сайынғы нормативтегі жауаптар үлесі",
        "en": "Share answered within the standards, by day",
    },
    "oldest": {
        "ru": "дольше всех: {age}, P{priority}",
        "kk": "ең ұзақ: {age}, P{priority}",
        "en": "longest: {age}, P{priority}",
    },
    "on_time": {"ru": "вовремя", "kk": "уақытында", "en": "on time"},
    "past_target_short": {"ru": "сверх норматива", "kk": "нормативтен тыс", "en": "past target"},
    "load_test": {
        "ru": "НАГРУЗОЧНЫЙ ТЕСТ: имитация ×{rate}",
        "kk": "ЖҮКТЕМЕ СЫНАҒЫ: имитация ×{rate}",
        "en": "LOAD TEST: simulated feed ×{rate}",
    },
    "simulated_feed": {"ru": "имитация", "kk": "имитация", "en": "simulated"},
    "managers": {"ru": "Аналитика", "kk": "Талдау", "en": "Analysis"},
}

#: The managers' pages (CompStat, trends, response times, incidents).
_MANAGERS: dict[str, dict[str, str]] = {
    "compstat": {"ru": "Сводка CompStat", "kk": "CompStat жиынтығы", "en": "CompStat overview"},
    "trends": {"ru": "Динамика", "kk": "Серпін", "en": "Trends"},
    "responses": {"ru": "Время реагирования", "kk": "Әрекет ету уақыты", "en": "Response times"},
    "incidents": {"ru": "Происшествия", "kk": "Оқиғалар", "en": "Incidents"},
    "integrity": {"ru": "Добросовестность", "kk": "Адалдық", "en": "Integrity"},
    "audit": {"ru": "Журнал аудита", "kk": "Аудит журналы", "en": "Audit log"},
    "wall": {"ru": "Видеостена", "kk": "Бейнеқабырға", "en": "Wall"},
    "sign_out": {"ru": "Выйти", "kk": "Шығу", "en": "Sign out"},
    "language": {"ru": "Язык", "kk": "Тіл", "en": "Language"},
    "range": {"ru": "Период", "kk": "Кезең", "en": "Range"},
    "as_of": {"ru": "На дату", "kk": "Күнге", "en": "As of"},
    "from": {"ru": "С", "kk": "Бастап", "en": "From"},
    "url_adjusted": {
        "ru": "В ссылке {name}={asked}: такой даты нет в данных, показано {used}.",
        "kk": "Сілтемеде {name}={asked}: мұндай күн деректерде жоқ, {used} көрсетілді.",
        "en": "The link asks for {name}={asked}, which the data cannot have; showing {used}.",
    },
    "to": {"ru": "По", "kk": "Дейін", "en": "To"},
    "all_districts": {"ru": "Все районы", "kk": "Барлық аудандар", "en": "All districts"},
    "preset_today": {"ru": "Сегодня", "kk": "Бүгін", "en": "Today"},
    "preset_yesterday": {"ru": "Вчера", "kk": "Кеше", "en": "Yesterday"},
    "preset_7d": {"ru": "7 дней", "kk": "7 күн", "en": "7 days"},
    "preset_28d": {"ru": "28 дней", "kk": "28 күн", "en": "28 days"},
    "preset_mtd": {"ru": "С начала месяца", "kk": "Ай басынан", "en": "Month to date"},
    "preset_ytd": {"ru": "С начала года", "kk": "Жыл басынан", "en": "Year to date"},
    "preset_custom": {"ru": "Другой", "kk": "Басқа", "en": "Custom"},
    "p_week": {"ru": "Неделя", "kk": "Апта", "en": "Week"},
    "p_prev_week": {"ru": "Пред. неделя", "kk": "Алдыңғы апта", "en": "Previous week"},
    "p_week_ly": {"ru": "Неделя год назад", "kk": "Бір жыл бұрынғы апта", "en": "Same week last year"},
    "p_d28": {"ru": "28 дней", "kk": "28 күн", "en": "28 days"},
    "p_d28_ly": {"ru": "28 дней год назад", "kk": "Бір жыл бұрын 28 күн", "en": "28 days last year"},
    "p_ytd": {"ru": "С начала года", "kk": "Жыл басынан", "en": "Year to date"},
    "p_ytd_ly": {"ru": "То же год назад", "kk": "Өткен жылы дәл осы", "en": "Last year to date"},
    "chg_week": {"ru": "Δ к пред. неделе", "kk": "Δ алдыңғы аптаға", "en": "Δ vs previous week"},
    "chg_week_ly": {"ru": "Δ к году назад", "kk": "Δ бір жыл бұрынға", "en": "Δ vs last year (week)"},
    "chg_d28": {"ru": "Δ 28 дней", "kk": "Δ 28 күн", "en": "Δ 28 days"},
    "chg_ytd": {"ru": "Δ с начала года", "kk": "Δ жыл басынан", "en": "Δ year to date"},
    "fam_violations": {"ru": "Нарушения ПДД по видам", "kk": "ЖҚЕ бұзушылықтары түрлері бойынша",
                       "en": "Traffic violations by type"},
    "fam_category": {"ru": "Происшествия по категориям", "kk": "Оқиғалар санаттар бойынша",
                     "en": "Incidents by category"},
    "fam_channel": {"ru": "Происшествия по каналам", "kk": "Оқиғалар арналар бойынша",
                    "en": "Incidents by channel"},
    "fam_priority": {"ru": "Происшествия по приоритету", "kk": "Оқиғалар басымдық бойынша",
                     "en": "Incidents by priority"},
    "fam_arrivals": {"ru": "Прибытия наряда по приоритету", "kk": "Жасақтың келуі басымдық бойынша",
                     "en": "Unit arrivals by priority"},
    "fam_within_target": {"ru": "Прибытия в нормативе", "kk": "Нормативтегі келулер",
                          "en": "Arrivals within target"},
    "fam_integrity": {"ru": "Сообщения о добросовестности", "kk": "Адалдық туралы хабарламалар",
                      "en": "Integrity reports"},
    "total": {"ru": "Всего", "kk": "Барлығы", "en": "Total"},
    "figure": {"ru": "Показатель", "kk": "Көрсеткіш", "en": "Figure"},
    "beyond_chance": {"ru": "вне случайности", "kk": "кездейсоқтықтан тыс", "en": "beyond chance"},
    "significance_note": {
        "ru": "▲▼ — изменение вне случайности: |z| > 3, где z = 2(√a − √b) для счётчиков a и b "
              "(пуассоновское приближение); на малых числах флаг не ставится.",
        "kk": "▲▼ — кездейсоқтықтан тыс өзгеріс: |z| > 3, мұнда z = 2(√a − √b), a және b — сандар "
              "(Пуассон жуықтауы); аз сандарда белгі қойылмайды.",
        "en": "▲▼ marks a change beyond chance: |z| > 3 with z = 2(√a − √b) for counts a and b "
              "(Poisson); small counts are never flagged.",
    },
    "periods_note": {
        "ru": "Неделя — 7 дней по выбранную дату; год назад — те же дни недели 52 недели назад; "
              "с начала года — с 1 января по ту же дату.",
        "kk": "Апта — таңдалған күнге дейінгі 7 күн; бір жыл бұрын — 52 апта бұрынғы сол апта "
              "күндері; жыл басынан — 1 қаңтардан сол күнге дейін.",
        "en": "Week: the 7 days ending on the chosen date; last year: the same weekdays 52 weeks "
              "earlier; year to date: 1 January to the same date.",
    },
    "simulated": {
        "ru": "В выбранном периоде есть смоделированная история ({lo} … {hi}), не реальные данные.",
        "kk": "Таңдалған кезеңде модельденген тарих бар ({lo} … {hi}), нақты деректер емес.",
        "en": "This range includes simulated history ({lo} … {hi}), not real data.",
    },
    "drill": {"ru": "Районы (выберите строку)", "kk": "Аудандар (жолды таңдаңыз)",
              "en": "Districts (pick a row to drill in)"},
    "csv": {"ru": "Скачать CSV", "kk": "CSV жүктеу", "en": "Download CSV"},
    "pdf": {"ru": "Справка PDF", "kk": "PDF анықтама", "en": "PDF briefing"},
    "figure_violations": {"ru": "Нарушения ПДД", "kk": "ЖҚЕ бұзушылықтары", "en": "Traffic violations"},
    "figure_incidents": {"ru": "Происшествия", "kk": "Оқиғалар", "en": "Incidents"},
    "daily": {"ru": "По дням", "kk": "Күн бойынша", "en": "Daily"},
    "weekly": {"ru": "По неделям", "kk": "Апта бойынша", "en": "Weekly"},
    "year_before": {"ru": "год назад (−364 дня)", "kk": "бір жыл бұрын (−364 күн)",
                    "en": "a year before (−364 days)"},
    "this_period": {"ru": "выбранный период", "kk": "таңдалған кезең", "en": "chosen range"},
    "heatmap": {"ru": "День недели × час", "kk": "Апта күні × сағат", "en": "Weekday × hour"},
    "by_district": {"ru": "По районам", "kk": "Аудандар бойынша", "en": "By district"},
    "group_by": {"ru": "Группировка", "kk": "Топтау", "en": "Group by"},
    "g_priority": {"ru": "приоритет", "kk": "басымдық", "en": "priority"},
    "g_district": {"ru": "район", "kk": "аудан", "en": "district"},
    "g_channel": {"ru": "канал", "kk": "арна", "en": "channel"},
    "g_category": {"ru": "категория", "kk": "санат", "en": "category"},
    "g_hour": {"ru": "час", "kk": "сағат", "en": "hour of day"},
    "g_weekday": {"ru": "день недели", "kk": "апта күні", "en": "weekday"},
    "g_all": {"ru": "всё", "kk": "барлығы", "en": "all"},
    "clock_note": {
        "ru": "Отсчёт начинается при регистрации происшествия (приём вызова, заявки, обращения) и "
              "останавливается: назначение — первый наряд назначен; прибытие — первый наряд на месте; "
              "закрытие — происшествие закрыто. Перцентили точные, по последней версии каждого "
              "происшествия, открытого в периоде.",
        "kk": "Есеп оқиға тіркелгенде басталады (қоңырау, өтініш қабылданғанда) және тоқтайды: "
              "тағайындау — бірінші жасақ тағайындалғанда; келу — бірінші жасақ орнында; жабу — оқиға "
              "жабылғанда. Перцентильдер дәл, кезеңде ашылған әр оқиғаның соңғы нұсқасы бойынша.",
        "en": "The clock starts when the incident is recorded (call answered, app request or desk "
              "report received) and stops at: assignment — the first unit assigned; arrival — the "
              "first unit on scene; closure — the incident closed. Percentiles are exact, over the "
              "latest record of each incident opened in the range.",
    },
    "n_incidents": {"ru": "происшествий", "kk": "оқиға", "en": "incidents"},
    "n_calls": {"ru": "вызовов", "kk": "шақыру", "en": "calls"},
    "n_assigned": {"ru": "назначен наряд", "kk": "жасақ тағайындалды", "en": "assigned"},
    "n_arrived": {"ru": "наряд прибыл", "kk": "жасақ келді", "en": "on scene"},
    "n_closed": {"ru": "закрыто", "kk": "жабылды", "en": "closed"},
    "assignment": {"ru": "назначение", "kk": "тағайындау", "en": "assignment"},
    "arrival": {"ru": "прибытие", "kk": "келу", "en": "arrival"},
    "closure": {"ru": "закрытие", "kk": "жабу", "en": "closure"},
    "target": {"ru": "норматив", "kk": "норматив", "en": "target"},
    "within": {"ru": "в нормативе", "kk": "нормативте", "en": "within target"},
    "weekly_p90": {"ru": "90-й перцентиль прибытия по неделям, мин", "kk": "Келудің 90-перцентилі "
                   "апта бойынша, мин", "en": "Weekly 90th percentile of arrival, min"},
    "sort_by": {"ru": "Сортировка", "kk": "Сұрыптау", "en": "Sort by"},
    "descending": {"ru": "по убыванию", "kk": "кему бойынша", "en": "descending"},
    "page": {"ru": "Страница", "kk": "Бет", "en": "Page"},
    "of_total": {"ru": "из {n}", "kk": "{n} ішінен", "en": "of {n}"},
    "types": {"ru": "Виды нарушений", "kk": "Бұзушылық түрлері", "en": "Violation types"},
    "categories": {"ru": "Категории", "kk": "Санаттар", "en": "Categories"},
    "channels": {"ru": "Каналы", "kk": "Арналар", "en": "Channels"},
    "priorities": {"ru": "Приоритеты", "kk": "Басымдықтар", "en": "Priorities"},
    "no_rows": {"ru": "Нет данных за период", "kk": "Кезеңге деректер жоқ", "en": "Nothing in this range"},
    "refused_district": {
        "ru": "Нет доступа: район {district} вне вашей зоны ответственности. Попытка записана в журнал.",
        "kk": "Рұқсат жоқ: {district} ауданы сіздің аймағыңыздан тыс. Әрекет журналға жазылды.",
        "en": "Access refused: district {district} is outside your scope. The attempt has been recorded.",
    },
    "refused_operations": {
        "ru": "Нет доступа: оперативные показатели не входят в вашу роль. Попытка записана в журнал.",
        "kk": "Рұқсат жоқ: жедел көрсеткіштер сіздің рөліңізге кірмейді. Әрекет журналға жазылды.",
        "en": "Access refused: operational figures are not part of your role. The attempt has been recorded.",
    },
    "col_id": {"ru": "№", "kk": "№", "en": "id"},
    "col_category": {"ru": "категория", "kk": "санат", "en": "category"},
    "col_channel": {"ru": "канал", "kk": "арна", "en": "channel"},
    "col_priority": {"ru": "приоритет", "kk": "басымдық", "en": "priority"},
    "col_district": {"ru": "район", "kk": "аудан", "en": "district"},
    "col_opened": {"ru": "открыто", "kk": "ашылды", "en": "opened"},
    "col_arrival": {"ru": "прибытие", "kk": "келу", "en": "first arrival"},
    "col_closed": {"ru": "закрыто", "kk": "жабылды", "en": "closed"},
    "col_status": {"ru": "статус", "kk": "мәртебе", "en": "status"},
    "col_source_code": {"ru": "код источника", "kk": "көз коды", "en": "source code"},
    "col_source_area": {"ru": "участок источника", "kk": "көз учаскесі", "en": "source area"},
    "briefing_title": {"ru": "Сводка CompStat: {area}, на {day}", "kk": "CompStat жиынтығы: {area}, {day}",
                       "en": "CompStat briefing: {area}, as of {day}"},
    "briefing_by": {"ru": "Подготовлено для {user}, {at}", "kk": "{user} үшін дайындалды, {at}",
                    "en": "Prepared for {user}, {at}"},
    "briefing_simulated": {
        "ru": "ВНИМАНИЕ: данные за {lo} … {hi} имитационные (демонстрационная история), не реальные.",
        "kk": "НАЗАР АУДАРЫҢЫЗ: {lo} … {hi} деректері имитациялық (демонстрациялық тарих), нақты емес.",
        "en": "NOTE: the figures of {lo} … {hi} are simulated (a demonstration history), not real.",
    },
    "sign_in": {"ru": "Войти", "kk": "Кіру", "en": "Sign in"},
    "sign_in_prompt": {
        "ru": "Войдите учётной записью вашей организации.",
        "kk": "Ұйымыңыздың есептік жазбасымен кіріңіз.",
        "en": "Sign in with your organisation's account to continue.",
    },
    "sign_in_unconfigured": {
        "ru": "Вход на этой панели не настроен (DOZOR_OIDC_*), и этот адрес — не киоск (not a kiosk).",
        "kk": "Бұл панельде кіру бапталмаған (DOZOR_OIDC_*), және бұл мекенжай киоск емес (not a kiosk).",
        "en": "Sign-in is not configured on this dashboard (DOZOR_OIDC_*), and this address is not a kiosk.",
    },
    "no_role": {
        "ru": "{user}: учётной записи не назначена роль. Обратитесь к администратору.",
        "kk": "{user}: есептік жазбаға рөл берілмеген. Әкімшіге хабарласыңыз.",
        "en": "{user}: no role is assigned to this account. Ask the administrator for access.",
    },
    "refused_integrity": {
        "ru": "Нет доступа: отчёты о честности — для службы собственной безопасности и министерства. "
              "Попытка записана в журнал.",
        "kk": "Рұқсат жоқ: адалдық есептері — жеке қауіпсіздік қызметі мен министрлікке арналған. "
              "Әрекет журналға жазылды.",
        "en": "Access refused: integrity reports are for the integrity unit and the ministry. "
              "The attempt has been recorded.",
    },
    "refused_audit": {
        "ru": "Нет доступа: журнал аудита — для аналитиков министерства. Попытка записана в журнал.",
        "kk": "Рұқсат жоқ: аудит журналы — министрлік талдаушыларына арналған. Әрекет журналға жазылды.",
        "en": "Access refused: the audit log is for the ministry's analysts. The attempt has been recorded.",
    },
    "recorded": {"ru": "Попытка записана в журнал.", "kk": "Әрекет журналға жазылды.",
                 "en": "The attempt has been recorded."},
    "way_back": {"ru": "← Вернуться: {page}", "kk": "← Қайту: {page}", "en": "← Back to {page}"},
    "integrity_title": {"ru": "Отчёты о честности по регионам и месяцам",
                        "kk": "Аймақтар мен айлар бойынша адалдық есептері",
                        "en": "Integrity reports by region and month"},
    "months": {"ru": "Месяцы", "kk": "Айлар", "en": "Months"},
    "reports_in_range": {"ru": "Отчётов за период", "kk": "Кезеңдегі есептер", "en": "Reports in the range"},
    "col_region": {"ru": "регион", "kk": "аймақ", "en": "region"},
    "col_month": {"ru": "месяц", "kk": "ай", "en": "month"},
    "col_kind": {"ru": "вид", "kk": "түрі", "en": "kind"},
    "col_service": {"ru": "служба", "kk": "қызмет", "en": "service"},
    "col_reports": {"ru": "отчётов", "kk": "есептер", "en": "reports"},
    "audit_title": {"ru": "Журнал аудита", "kk": "Аудит журналы", "en": "Audit log"},
    "audit_days": {"ru": "Дней", "kk": "Күн", "en": "Days"},
    "audit_user": {"ru": "Пользователь", "kk": "Пайдаланушы", "en": "User"},
    "audit_action": {"ru": "Действие", "kk": "Әрекет", "en": "Action"},
    "audit_page": {"ru": "Страница", "kk": "Бет", "en": "Page"},
    "audit_count": {"ru": "{n} записей за {days} дн. (новые сверху, не более 1000), время {tz}",
                    "kk": "{days} күндегі {n} жазба (жаңалары жоғарыда, 1000-нан аспайды), уақыт {tz}",
                    "en": "{n} entries in the last {days} days (newest first, at most 1000), times in {tz}"},
    "col_at": {"ru": "время", "kk": "уақыт", "en": "at"},
    "col_user": {"ru": "пользователь", "kk": "пайдаланушы", "en": "user"},
    "col_role": {"ru": "роль", "kk": "рөл", "en": "role"},
    "col_action": {"ru": "действие", "kk": "әрекет", "en": "action"},
    "col_page": {"ru": "страница", "kk": "бет", "en": "page"},
    "col_detail": {"ru": "подробности", "kk": "толығырақ", "en": "detail"},
    "col_rows": {"ru": "строк", "kk": "жолдар", "en": "rows"},
    "any": {"ru": "все", "kk": "барлығы", "en": "any"},
    "partial_today": {
        "ru": "Сегодня ({day}) учтено до {time}: день ещё не окончен.",
        "kk": "Бүгін ({day}) {time} дейін есептелді: күн әлі аяқталған жоқ.",
        "en": "Today ({day}) is counted up to {time}: the day is not over.",
    },
}  # fmt: skip
_TEXT.update(_MANAGERS)

#: Labels of the stored keys (violation types, categories, channels, statuses).
_LABELS: dict[str, dict[str, str]] = {
    "speeding": {"ru": "превышение скорости", "kk": "жылдамдықты асыру", "en": "speeding"},
    "red_light": {"ru": "проезд на красный", "kk": "қызыл шамнан өту", "en": "red light"},
    "wrong_lane": {"ru": "не та полоса", "kk": "басқа жолақ", "en": "wrong lane"},
    "bus_lane": {"ru": "полоса ОТ", "kk": "қоғамдық көлік жолағы", "en": "bus lane"},
    "stop_line": {"ru": "стоп-линия", "kk": "тоқтау сызығы", "en": "stop line"},
    "no_seat_belt": {"ru": "без ремня", "kk": "белдіксіз", "en": "no seat belt"},
    "phone_use": {"ru": "телефон за рулём", "kk": "рульде телефон", "en": "phone use"},
    "pedestrian_crossing": {"ru": "пешеходный переход", "kk": "жаяу жүргінші өткелі",
                            "en": "pedestrian crossing"},
    "parking": {"ru": "стоянка", "kk": "тұрақ", "en": "parking"},
    "theft": {"ru": "кража", "kk": "ұрлық", "en": "theft"},
    "fraud": {"ru": "мошенничество", "kk": "алаяқтық", "en": "fraud"},
    "domestic": {"ru": "бытовое", "kk": "тұрмыстық", "en": "domestic"},
    "traffic_accident": {"ru": "ДТП", "kk": "ЖКО", "en": "traffic accident"},
    "hooliganism": {"ru": "хулиганство", "kk": "бұзақылық", "en": "hooliganism"},
    "drugs": {"ru": "наркотики", "kk": "есірткі", "en": "drugs"},
    "lost_documents": {"ru": "утеря документов", "kk": "құжаттарды жоғалту", "en": "lost documents"},
    "missing_person": {"ru": "пропажа человека", "kk": "адамның жоғалуы", "en": "missing person"},
    "consultation": {"ru": "консультация", "kk": "кеңес", "en": "consultation"},
    "other": {"ru": "прочее", "kk": "басқа", "en": "other"},
    "call_102": {"ru": "звонок 102", "kk": "102 қоңырауы", "en": "102 call"},
    "app_102": {"ru": "приложение 102", "kk": "102 қосымшасы", "en": "102 app"},
    "sos_button": {"ru": "кнопка SOS", "kk": "SOS түймесі", "en": "SOS button"},
    "front_office": {"ru": "фронт-офис", "kk": "фронт-офис", "en": "front office"},
    "patrol": {"ru": "патруль", "kk": "патруль", "en": "patrol"},
    "opened": {"ru": "открыто", "kk": "ашық", "en": "opened"},
    "in_progress": {"ru": "в работе", "kk": "жұмыста", "en": "in progress"},
    "closed": {"ru": "закрыто", "kk": "жабық", "en": "closed"},
    "cancelled": {"ru": "отменено", "kk": "болдырылмады", "en": "cancelled"},
    # Integrity reports: kinds, services, regions.
    "bribe_attempt_reported": {"ru": "сообщение о попытке подкупа", "kk": "пара беру әрекеті туралы хабар",
                               "en": "bribe attempt reported"},
    "integrity_check": {"ru": "проверка на честность", "kk": "адалдықты тексеру", "en": "integrity check"},
    "juvenile": {"ru": "ювенальная полиция", "kk": "кәмелетке толмағандар полициясы",
                 "en": "juvenile police"},
    "migration": {"ru": "миграционная полиция", "kk": "көші-қон полициясы", "en": "migration police"},
    "district_inspector": {"ru": "участковые", "kk": "учаскелік инспекторлар", "en": "district inspectors"},
    "modular_post": {"ru": "модульные посты", "kk": "модульдік бекеттер", "en": "modular posts"},
    "duty_unit": {"ru": "дежурные части", "kk": "кезекші бөлімдер", "en": "duty units"},
    "astana": {"ru": "Астана", "kk": "Астана", "en": "Astana"},
    "almaty": {"ru": "Алматы", "kk": "Алматы", "en": "Almaty"},
    "shymkent": {"ru": "Шымкент", "kk": "Шымкент", "en": "Shymkent"},
    "abai": {"ru": "Абайская область", "kk": "Абай облысы", "en": "Abai region"},
    "akmola": {"ru": "Акмолинская область", "kk": "Ақмола облысы", "en": "Akmola region"},
    "aktobe-region": {"ru": "Актюбинская область", "kk": "Ақтөбе облысы", "en": "Aktobe region"},
    "almaty-region": {"ru": "Алматинская область", "kk": "Алматы облысы", "en": "Almaty region"},
    "atyrau-region": {"ru": "Атырауская область", "kk": "Атырау облысы", "en": "Atyrau region"},
    "east-kazakhstan": {"ru": "Восточно-Казахстанская область", "kk": "Шығыс Қазақстан облысы",
                        "en": "East Kazakhstan region"},
    "jambyl": {"ru": "Жамбылская область", "kk": "Жамбыл облысы", "en": "Jambyl region"},
    "jetisu": {"ru": "область Жетісу", "kk": "Жетісу облысы", "en": "Jetisu region"},
    "karaganda-region": {"ru": "Карагандинская область", "kk": "Қарағанды облысы", "en": "Karaganda region"},
    "kostanay-region": {"ru": "Костанайская область", "kk": "Қостанай облысы", "en": "Kostanay region"},
    "kyzylorda-region": {"ru": "Кызылординская область", "kk": "Қызылорда облысы", "en": "Kyzylorda region"},
    "mangystau": {"ru": "Мангистауская область", "kk": "Маңғыстау облысы", "en": "Mangystau region"},
    "north-kazakhstan": {"ru": "Северо-Казахстанская область", "kk": "Солтүстік Қазақстан облысы",
                         "en": "North Kazakhstan region"},
    "pavlodar-region": {"ru": "Павлодарская область", "kk": "Павлодар облысы", "en": "Pavlodar region"},
    "turkistan": {"ru": "Туркестанская область", "kk": "Түркістан облысы", "en": "Turkistan region"},
    "ulytau": {"ru": "область Ұлытау", "kk": "Ұлытау облысы", "en": "Ulytau region"},
    "west-kazakhstan": {"ru": "Западно-Казахстанская область", "kk": "Батыс Қазақстан облысы",
                        "en": "West Kazakhstan region"},
}  # fmt: skip

_WEEKDAYS = {
    "ru": ("Пн", "Вт", "Ср", "Чт", "Пт", "Сб", "Вс"),
    "kk": ("Дс", "Сс", "Ср", "Бс", "Жм", "Сн", "Жс"),
    "en": ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"),
}


def label(key: str, lang: str) -> str:
    """The label of a stored key (a violation type, category, channel, status); the key itself
    when it has none (a source's own code)."""
    entry = _LABELS.get(key)
    return entry.get(lang, entry["ru"]) if entry else key


def weekday(iso_day: int, lang: str) -> str:
    """Short name of ISO weekday 1 (Monday) … 7."""
    return _WEEKDAYS.get(lang, _WEEKDAYS["ru"])[iso_day - 1]


def t(key: str, lang: str, **kwargs: object) -> str:
    """The text for ``key`` in ``lang`` (Russian if the language is unknown)."""
    entry = _TEXT[key]
    return entry.get(lang, entry["ru"]).format(**kwargs)


def _locale(lang: str) -> str:
    return {"ru": "ru_RU", "kk": "kk_KZ", "en": "en_US"}.get(lang, "ru_RU")


def fmt_int(n: int, lang: str) -> str:
    """'23 800' in Russian and Kazakh (non-breaking space), '23,800' in English."""
    return format_decimal(n, locale=_locale(lang))


def fmt_pct(x: float, lang: str) -> str:
    return format_percent(x, format="+#,##0%;-#,##0%", locale=_locale(lang))


def fmt_local_time(t: dt.datetime, tz: str) -> str:
    """Wall-clock time in the control centre's zone (UTC+5), 24-hour."""
    return t.astimezone(ZoneInfo(tz)).strftime("%H:%M:%S")


def fmt_age(seconds: float, lang: str) -> str:
    units = {"ru": ("с", "мин", "ч"), "kk": ("с", "мин", "сағ"), "en": ("s", "min", "h")}[
        lang if lang in LANGS else "ru"
    ]
    if seconds < 120:
        return f"{int(seconds)} {units[0]}"
    if seconds < 7200:
        return f"{int(seconds // 60)} {units[1]}"
    return f"{int(seconds // 3600)} {units[2]}"


def fmt_minutes(seconds: float | None, lang: str) -> str:
    """Seconds as minutes with one decimal, in the language's notation ('11,5' in Russian)."""
    if seconds is None:
        return "—"
    return format_decimal(round(seconds / 60, 1), format="#,##0.0", locale=_locale(lang))


def fmt_change(now: int, before: int, lang: str) -> str | None:
    """'+12%' against the same time yesterday; None when yesterday had nothing to compare with."""
    if not before:
        return None
    change = (now - before) / before
    return "±0%" if abs(change) < 0.005 else fmt_pct(change, lang)
