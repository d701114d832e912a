// Storyboard tab: start a job with the host's progress bar (a task id + requestProgress), as txt2img does.
function storyboard_track(progressId, previewId, onProgress, args) {
    var id = randomId();
    requestProgress(id, gradioApp().getElementById(progressId), gradioApp().getElementById(previewId),
        function() {}, onProgress);
    var res = Array.from(args);
    res[0] = id;
    return res;
}

// Training: the loss line follows the host's textinfo.
function storyboard_start_training() {
    return storyboard_track('storyboard_progress', 'storyboard_preview', function(progress) {
        var loss = gradioApp().getElementById('storyboard_loss');
        if (loss && progress.textinfo) loss.innerHTML = progress.textinfo;
    }, arguments);
}

// A board, or one panel redrawn: the panel being drawn shows as the live preview over the board picture.
function storyboard_start_board() {
    return storyboard_track('storyboard_board_progress', 'storyboard_board_image', function() {}, arguments);
}

// A dataset build (the contact sheet area shows the progress), and a validation (over its sheets).
function storyboard_start_dataset() {
    return storyboard_track('storyboard_dataset_progress', 'storyboard_dataset_sheet', function() {}, arguments);
}

function storyboard_start_validate() {
    return storyboard_track('storyboard_validate_progress', 'storyboard_validate_sheets', function() {}, arguments);
}
