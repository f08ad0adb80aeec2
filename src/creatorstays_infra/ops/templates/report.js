document.addEventListener('DOMContentLoaded', function () {
  var b = document.body;
  b.dataset.bars = document.querySelectorAll('svg rect.bar').length;
  b.dataset.areas = document.querySelectorAll('svg polygon.area').length;
  b.dataset.points = document.querySelectorAll('svg circle.point').length;
  var widths = Array.prototype.map.call(document.querySelectorAll('svg.chart'), function (s) {
    return Math.round(s.getBoundingClientRect().width);
  });
  b.dataset.chartWidths = widths.join(',');
  b.dataset.rendered = 'ok';
});
