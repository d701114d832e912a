// Storyboard tab: start a training run with the host's progress bar (task id + requestProgress), show the loss.
function storyboard_start_training() {
    var id = randomId();
    requestProgress(id, gradioApp().getElementById('storyboard_progress'), gradioApp().getElementById('storyboard_preview'),
        function() {},
        function(progress) {
            var loss = gradioApp().getElementById('storyboard_loss');
            if (loss && progress.textinfo) loss.innerHTML = progress.textinfo;
        });
    var res = Array.from(arguments);
    res[0] = id;
    return res;
}
