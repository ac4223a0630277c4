"""Constants shared by the map tests' fixtures and assertions."""

MONTH = "2026-10"
LON0, LAT0 = 119.88, 31.68
# personal labels that must never reach a page
SECRET_LABELS = ("张三 住址XX路1号", "李四 住址YY路2号", "王五 住址ZZ路3号", "赵六化工厂 负责人钱七")
